import { MAX_HEARTBEAT_BYTES, parseHeartbeat, type Heartbeat } from '../../domain/heartbeat';

/** The heartbeat CONTRACT.md shows, verbatim. */
const contractExample = {
  serial: 'ABC123',
  timestamp: 1704891234567,
  gps: { lat: 37.7749, lng: -122.4194, heading: 45.2, horizontal_accuracy: 3.5, altitude: 10.2, speed_mph: 5.3 },
  batteries: [{ index: 0, charge_percent: 87, is_charging: false, voltage: 48.2, current: -5.3, temperature: 32.5 }],
  components: { GPS: 'OK', CAMERAS: 'OK', LTE_ROUTERS: 'TIMEOUT' },
  lid: { is_open: false },
  network: { type: 'CELLULAR', signal_strength: -85 },
  events: [{ type: 'PIN_ENTRY', pin: '1234', timestamp: 1704891234000 }],
};
const topic = 'robot/ABC123/status';
const receivedAt = 1704891235000;

function accepted(payload: unknown, on = topic): Heartbeat {
  const result = parseHeartbeat(on, typeof payload === 'string' ? payload : JSON.stringify(payload), receivedAt);
  if (!result.ok) throw new Error(`rejected: ${result.reason}`);
  return result.heartbeat;
}

/** Accepted without the parts that failed validation: their reasons, and the heartbeat with the rest. */
function droppedOf(payload: unknown): { reasons: string[]; heartbeat: Heartbeat } {
  const result = parseHeartbeat(topic, typeof payload === 'string' ? payload : JSON.stringify(payload), receivedAt);
  if (!result.ok) throw new Error(`rejected: ${result.reason}`);
  return { reasons: result.dropped.map((d) => d.reason), heartbeat: result.heartbeat };
}

const dropped = (payload: unknown) => droppedOf(payload).reasons.join('\n');

function reasonOf(payload: unknown, on = topic): string {
  const result = parseHeartbeat(on, typeof payload === 'string' ? payload : JSON.stringify(payload), receivedAt);
  if (result.ok) throw new Error('accepted');
  return result.reason;
}

const minimal = { serial: 'ABC123', timestamp: 1704891234567 };

describe('parseHeartbeat', () => {
  it('normalises the contract example to our camelCase heartbeat', () => {
    expect(accepted(contractExample)).toEqual({
      serial: 'ABC123',
      timestamp: 1704891234567,
      receivedAt,
      location: { latitude: 37.7749, longitude: -122.4194, heading: 45.2, horizontalAccuracy: 3.5, altitude: 10.2, speedMph: 5.3 },
      batteries: [{ batteryIndex: 0, chargePercent: 87, isCharging: false, voltage: 48.2, current: -5.3, temperature: 32.5 }],
      components: { GPS: 'OK', CAMERAS: 'OK', LTE_ROUTERS: 'TIMEOUT' },
      lidOpen: false,
      network: { type: 'CELLULAR', signalStrength: -85 },
      events: [{ type: 'PIN_ENTRY', pin: '1234', timestamp: 1704891234000 }],
    });
  });

  it('accepts the payload as a Buffer as well as a string', () => {
    const result = parseHeartbeat(topic, Buffer.from(JSON.stringify(contractExample)), receivedAt);
    expect(result.ok && result.heartbeat.serial).toBe('ABC123');
  });

  it('rounds a fractional charge percent to the integer the Device carries', () => {
    const hb = accepted({ ...minimal, batteries: [{ index: 1, charge_percent: 86.6 }] });
    expect(hb.batteries).toEqual([expect.objectContaining({ batteryIndex: 1, chargePercent: 87 })]);
  });

  it('accepts a heartbeat without gps, batteries, components, lid, network or events', () => {
    const hb = accepted(minimal);
    expect(hb.location).toBeUndefined();
    expect(hb.batteries).toEqual([]);
    expect(hb.components).toEqual({});
    expect(hb.lidOpen).toBeUndefined();
    expect(hb.network).toBeUndefined();
    expect(hb.events).toEqual([]);
  });

  it('accepts each optional part left out on its own', () => {
    const without = (key: keyof typeof contractExample) => Object.fromEntries(Object.entries(contractExample).filter(([k]) => k !== key));
    expect(accepted(without('gps')).location).toBeUndefined();
    expect(accepted(without('batteries')).batteries).toEqual([]);
    expect(accepted(without('events')).events).toEqual([]);
    expect(accepted(without('components')).components).toEqual({});
  });

  it('drops unknown fields at every level', () => {
    const hb = accepted({
      ...contractExample,
      firmware: '1.2.3',
      gps: { ...contractExample.gps, satellites: 9 },
      batteries: [{ ...contractExample.batteries[0], cycles: 300 }],
      lid: { is_open: true, latch: 'x' },
      network: { ...contractExample.network, carrier: 'acme' },
      events: [{ ...contractExample.events[0], extra: true }],
    });
    expect(hb).not.toHaveProperty('firmware');
    expect(hb.location).not.toHaveProperty('satellites');
    expect(hb.batteries[0]).not.toHaveProperty('cycles');
    expect(hb.network).not.toHaveProperty('carrier');
    expect(hb.events[0]).not.toHaveProperty('extra');
    expect(hb.lidOpen).toBe(true);
  });

  describe('drops a part that fails validation, naming its field, and applies the rest', () => {
    it('a robot-chosen key quoted, so ":" or "." in it cannot blur the path', () => {
      expect(dropped({ ...minimal, components: { ':': [] } })).toMatch(/^components\[":"\]: /);
      expect(dropped({ ...minimal, components: { 'a b': 7 } })).toMatch(/^components\["a b"\]: /);
      expect(dropped({ ...minimal, components: { ['x'.repeat(5000)]: 7 } }).length).toBeLessThan(200);
    });

    it('a latitude or longitude out of range drops the location; a heading out of range only the heading', () => {
      expect(droppedOf({ ...minimal, gps: { lat: 90.5, lng: 0 } })).toMatchObject({ reasons: [expect.stringMatching(/^gps\.lat: /)], heartbeat: { location: undefined } });
      expect(dropped({ ...minimal, gps: { lat: 0 } })).toMatch(/^gps\.lng: /);
      const heading = droppedOf({ ...minimal, gps: { lat: 1, lng: 2, heading: 361, speed_mph: 3 } });
      expect(heading.reasons).toEqual([expect.stringMatching(/^gps\.heading: /)]);
      expect(heading.heartbeat.location).toEqual({ latitude: 1, longitude: 2, speedMph: 3 });
    });

    it('a fractional signal strength only the signal strength', () => {
      const { reasons, heartbeat } = droppedOf({ ...minimal, network: { type: 'WIFI', signal_strength: -61.5 } });
      expect(reasons).toEqual([expect.stringMatching(/^network\.signal_strength: /)]);
      expect(heartbeat.network).toEqual({ type: 'WIFI' });
    });

    it('a component with an unknown code, keeping the other components', () => {
      const { reasons, heartbeat } = droppedOf({ ...minimal, components: { GPS: 'OK', CAMERAS: 'BROKEN' } });
      expect(reasons).toEqual([expect.stringMatching(/^components\.CAMERAS: /)]);
      expect(heartbeat.components).toEqual({ GPS: 'OK' });
      expect(dropped({ ...minimal, components: { GPS: 'ok' } })).toMatch(/^components\.GPS: /);
    });

    it('a PIN_ENTRY event without its pin, keeping the other events', () => {
      const { reasons, heartbeat } = droppedOf({ ...minimal, events: [{ type: 'PIN_ENTRY', timestamp: 1704891234000 }, { type: 'PIN_ENTRY', pin: '1234', timestamp: 1704891234001 }] });
      expect(reasons).toEqual([expect.stringMatching(/^events\.0\.pin: /)]);
      expect(heartbeat.events).toEqual([{ type: 'PIN_ENTRY', pin: '1234', timestamp: 1704891234001 }]);
      expect(dropped({ ...minimal, events: [{ type: 'PIN_ENTRY', pin: '12ab', timestamp: 1 }] })).toMatch(/^events\.0\.pin: /);
    });

    it('more than 16 batteries or 50 events drops them all', () => {
      const batteries = Array.from({ length: 17 }, (_, i) => ({ index: i % 16, charge_percent: 50 }));
      expect(droppedOf({ ...minimal, batteries })).toMatchObject({ reasons: [expect.stringMatching(/^batteries: /)], heartbeat: { batteries: [] } });
      const events = Array.from({ length: 51 }, () => ({ type: 'PIN_ENTRY', pin: '1234', timestamp: 1 }));
      expect(dropped({ ...minimal, events })).toMatch(/^events: /);
    });

    it('the second of two batteries with the same index, which one projection upsert cannot write', () => {
      const batteries = [
        { index: 0, charge_percent: 80 },
        { index: 0, charge_percent: 20 },
      ];
      const { reasons, heartbeat } = droppedOf({ ...minimal, batteries });
      expect(reasons).toEqual([expect.stringMatching(/^batteries\.1\.index: /)]);
      expect(heartbeat.batteries.map((b) => b.chargePercent)).toEqual([80]);
    });

    it('a lid that is not an object with is_open, and every broken part of one message at once', () => {
      const { reasons, heartbeat } = droppedOf({ ...contractExample, lid: { is_open: 'yes' }, gps: { lat: 1, lng: 2, heading: -4 }, components: { GPS: 'NOPE', CAMERAS: 'OK' } });
      expect(reasons.map((r) => r.split(':')[0])).toEqual(['gps.heading', 'components.GPS', 'lid.is_open']);
      expect(heartbeat).toMatchObject({ lidOpen: undefined, components: { CAMERAS: 'OK' }, batteries: [{ chargePercent: 87 }], location: { latitude: 1 } });
    });
  });

  describe('rejects the whole message, naming the field', () => {
    it('a missing or malformed serial', () => {
      expect(reasonOf({ timestamp: 1 })).toMatch(/^serial: /);
      expect(reasonOf({ ...minimal, serial: 'ABC 123' })).toMatch(/^serial: /);
      expect(reasonOf({ ...minimal, serial: 42 })).toMatch(/^serial: /);
    });

    it('a missing, fractional or non-positive timestamp', () => {
      expect(reasonOf({ serial: 'ABC123' })).toMatch(/^timestamp: /);
      expect(reasonOf({ ...minimal, timestamp: 1.5 })).toMatch(/^timestamp: /);
      expect(reasonOf({ ...minimal, timestamp: -1 })).toMatch(/^timestamp: /);
      expect(reasonOf({ ...minimal, timestamp: '1704891234567' })).toMatch(/^timestamp: /);
    });

    it('a payload that is not JSON', () => {
      expect(reasonOf('{"serial": "ABC123",')).toMatch(/^payload: not valid JSON/);
      expect(reasonOf('')).toMatch(/^payload: /);
    });

    it('a JSON payload that is not an object', () => {
      expect(reasonOf('[]')).toMatch(/^\(root\): /);
      expect(reasonOf('null')).toMatch(/^\(root\): /);
    });

    it('a payload over 64 KiB, before parsing it', () => {
      const big = JSON.stringify({ ...minimal, padding: 'x'.repeat(MAX_HEARTBEAT_BYTES) });
      expect(Buffer.byteLength(big)).toBeGreaterThan(64 * 1024);
      expect(reasonOf(big)).toMatch(/^payload: \d+ bytes is over the 65536-byte limit/);
      expect(reasonOf(big.slice(0, -1))).toMatch(/^payload: \d+ bytes/);
    });

    it('counts the 64 KiB in bytes, not characters', () => {
      const body = JSON.stringify({ ...minimal, padding: '' });
      const chars = Math.floor((MAX_HEARTBEAT_BYTES - body.length) / 3) + 1;
      const multiByte = JSON.stringify({ ...minimal, padding: '€'.repeat(chars) });
      expect(multiByte.length).toBeLessThan(MAX_HEARTBEAT_BYTES);
      expect(reasonOf(multiByte)).toMatch(/^payload: \d+ bytes is over/);
    });

    it('a payload serial that differs from the topic serial', () => {
      expect(reasonOf({ ...minimal, serial: 'XYZ789' })).toBe('serial: "XYZ789" does not match topic serial "ABC123"');
    });

    it('a topic that is not robot/<serial>/status', () => {
      for (const other of ['robot/ABC123/command', 'robot/ABC123', 'robots/ABC123/status', 'robot/ABC123/status/x', 'robot//status', 'robot/+/status']) {
        expect(reasonOf(minimal, other)).toMatch(/^topic: /);
      }
    });

  });

  it('accepts the largest arrays it allows', () => {
    const batteries = Array.from({ length: 16 }, (_, i) => ({ index: i, charge_percent: 50 }));
    const events = Array.from({ length: 50 }, (_, i) => ({ type: 'PIN_ENTRY', pin: '1234', timestamp: i + 1 }));
    const hb = accepted({ ...minimal, batteries, events });
    expect(hb.batteries).toHaveLength(16);
    expect(hb.events).toHaveLength(50);
  });

  describe('prototype-pollution keys', () => {
    afterEach(() => {
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    });

    it('a __proto__ component neither pollutes nor reaches the heartbeat', () => {
      const payload = `{"serial":"ABC123","timestamp":1,"components":{"GPS":"OK","__proto__":{"polluted":"yes"}}}`;
      const result = parseHeartbeat(topic, payload, receivedAt);
      if (result.ok) {
        expect(result.dropped.every((d) => d.field.startsWith('components'))).toBe(true);
        expect(result.heartbeat.components).toEqual({ GPS: 'OK' });
        expect(Object.getPrototypeOf(result.heartbeat.components)).toBe(Object.prototype);
        expect((result.heartbeat.components as Record<string, unknown>).polluted).toBeUndefined();
      } else {
        expect(result.reason).toMatch(/^components/);
      }
    });

    it('a constructor component is dropped', () => {
      expect(dropped(`{"serial":"ABC123","timestamp":1,"components":{"constructor":"OK"}}`)).toMatch(/^components\.constructor: /);
    });

    it('__proto__ at the top level or inside gps is dropped', () => {
      const payload = `{"serial":"ABC123","timestamp":1,"__proto__":{"polluted":"yes"},"gps":{"lat":1,"lng":2,"__proto__":{"polluted":"yes"}}}`;
      const hb = accepted(payload);
      expect((hb as unknown as Record<string, unknown>).polluted).toBeUndefined();
      expect((hb.location as unknown as Record<string, unknown>).polluted).toBeUndefined();
      expect(Object.getPrototypeOf(hb)).toBe(Object.prototype);
    });
  });
});
