import fc from 'fast-check';
import { parseCommandAck } from '../../domain/commands';
import { heartbeatSchema, MAX_HEARTBEAT_BYTES, parseHeartbeat, type RawHeartbeat } from '../../domain/heartbeat';
import { heartbeatCase, validHeartbeat } from '../support/fuzz-heartbeats';
import { hostileJson, hostileString, hostileValue, namedField, prototypeSnapshot, topField } from '../support/hostile';

/**
 * Property-based tests of the MQTT edge: thousands of malformed, oversized and hostile heartbeats
 * through `parseHeartbeat`, which must never throw, must name the field of every rejection, and
 * must accept exactly the heartbeats that are valid.
 */

// Fixed seed keeps CI reproducible; FUZZ_SEED explores further (FUZZ_SEED=$RANDOM npx jest test/unit/fuzz-heartbeat).
beforeAll(() => fc.configureGlobal({ seed: Number(process.env.FUZZ_SEED ?? 7) }));
afterAll(() => fc.resetConfigureGlobal());

const TOP_LEVEL_FIELDS = ['serial', 'timestamp', 'gps', 'batteries', 'components', 'lid', 'network', 'events'];

let prototypeBefore: string;
beforeAll(() => {
  prototypeBefore = prototypeSnapshot();
});
afterAll(() => {
  // After every run below: nothing reached Object.prototype.
  expect(prototypeSnapshot()).toBe(prototypeBefore);
});

test('a valid heartbeat is accepted and keeps its values', () => {
  fc.assert(
    fc.property(validHeartbeat, (raw) => {
      const result = parseHeartbeat(`robot/${raw.serial}/status`, JSON.stringify(raw), 1);
      if (!result.ok) throw new Error(`rejected a valid heartbeat: ${result.reason}`);
      expect(heartbeatSchema.safeParse(result.heartbeat).success).toBe(true);
      expect(result.heartbeat).toMatchObject({ serial: raw.serial, timestamp: raw.timestamp, lidOpen: raw.lid?.is_open });
    }),
    { numRuns: 500 },
  );
});

test('one hostile field in an otherwise valid heartbeat: rejected naming serial or timestamp, dropped naming its part, or accepted when still valid', () => {
  let refused = 0;
  fc.assert(
    fc.property(heartbeatCase, ({ raw, path, text }) => {
      const result = parseHeartbeat(`robot/${raw.serial}/status`, text, 1);
      const oversized = Buffer.byteLength(text) > MAX_HEARTBEAT_BYTES;
      if (!result.ok) {
        refused++;
        const field = namedField(result.reason);
        expect(topField(field)).toBe(oversized ? 'payload' : String(path[0]));
        expect(['payload', 'serial', 'timestamp']).toContain(topField(field));
        expect(result.reason.length).toBeLessThan(1024);
        return;
      }
      // Accepted: then it is a heartbeat as the schema defines it, for the topic's robot, and
      // anything left out was the hostile field's part.
      expect(heartbeatSchema.safeParse(result.heartbeat).success).toBe(true);
      expect(result.heartbeat.serial).toBe(raw.serial);
      expect(Object.getPrototypeOf(result.heartbeat.components)).toBe(Object.prototype);
      for (const part of result.dropped) {
        refused++;
        expect(topField(part.field)).toBe(String(path[0]));
        expect(part.reason.length).toBeLessThan(1024);
      }
    }),
    { numRuns: 2000 },
  );
  // The generator does reach the rejections and drops it is meant to exercise.
  expect(refused).toBeGreaterThan(1000);
});

test('arbitrary JSON, text and bytes on any robot topic never throw and are rejected with a field', () => {
  const payload = fc.oneof(
    fc.jsonValue({ maxDepth: 6 }).map((v) => JSON.stringify(v)),
    hostileValue.map(hostileJson),
    hostileString,
    fc.uint8Array({ maxLength: 2048 }).map((b) => Buffer.from(b)),
  );
  const topic = fc.oneof(
    fc.constant('robot/FUZZ1/status'),
    hostileString.map((s) => `robot/${s}/status`),
    hostileString,
    fc.string({ unit: 'binary', minLength: 1000, maxLength: 5000 }).map((s) => `robot/${s}/status`),
  );
  fc.assert(
    fc.property(topic, payload, (t, p) => {
      const result = parseHeartbeat(t, p, 1);
      if (result.ok) {
        expect(heartbeatSchema.safeParse(result.heartbeat).success).toBe(true);
        for (const part of result.dropped) expect(TOP_LEVEL_FIELDS).toContain(topField(part.field));
        return;
      }
      expect(['topic', 'payload', '(root)', ...TOP_LEVEL_FIELDS]).toContain(topField(namedField(result.reason)));
      expect(result.reason.length).toBeLessThan(1024);
    }),
    { numRuns: 2000 },
  );
});

test('a payload over 64 KiB is rejected by its size, whatever it holds', () => {
  const oversized = fc.tuple(validHeartbeat, fc.integer({ min: 1, max: 64 * 1024 }), fc.constantFrom('a', 'é', '🤖', ' ')).map(([raw, extra, pad]) => {
    const base = JSON.stringify({ ...raw, padding: '' });
    const room = MAX_HEARTBEAT_BYTES - Buffer.byteLength(base) + extra;
    const pads = Math.ceil(room / Buffer.byteLength(pad));
    return { raw, text: JSON.stringify({ ...raw, padding: pad.repeat(pads) }) };
  });
  fc.assert(
    fc.property(oversized, ({ raw, text }) => {
      expect(Buffer.byteLength(text)).toBeGreaterThan(MAX_HEARTBEAT_BYTES);
      const result = parseHeartbeat(`robot/${raw.serial}/status`, text, 1);
      expect(result).toEqual({ ok: false, reason: expect.stringMatching(/^payload: \d+ bytes is over the 65536-byte limit$/) });
    }),
    { numRuns: 200 },
  );
});

test('a heartbeat speaks only for the robot of its topic', () => {
  fc.assert(
    fc.property(validHeartbeat, validHeartbeat, (mine, other) => {
      fc.pre(mine.serial !== other.serial);
      const result = parseHeartbeat(`robot/${mine.serial}/status`, JSON.stringify(other), 1);
      expect(result).toEqual({ ok: false, reason: `serial: "${other.serial}" does not match topic serial "${mine.serial}"` });
    }),
    { numRuns: 300 },
  );
});

test('prototype-polluting keys anywhere are dropped or rejected, never merged', () => {
  const polluting = ['{"__proto__":{"polluted":"yes"}}', '{"constructor":{"prototype":{"polluted":"yes"}}}'];
  const places: (keyof RawHeartbeat | '')[] = ['', 'gps', 'lid', 'network', 'components'];
  fc.assert(
    fc.property(validHeartbeat, fc.constantFrom(...polluting), fc.constantFrom(...places), (raw, extra, place) => {
      const text = JSON.stringify(raw);
      const spliced =
        place === ''
          ? `${extra.slice(0, -1)},${text.slice(1)}`
          : text.includes(`"${place}":{}`)
            ? text.replace(`"${place}":{}`, `"${place}":${extra}`)
            : text.replace(`"${place}":{`, `"${place}":{${extra.slice(1, -1)},`);
      const result = parseHeartbeat(`robot/${raw.serial}/status`, spliced, 1);
      if (result.ok) {
        expect(JSON.stringify(result.heartbeat)).not.toContain('polluted');
        expect(Object.getPrototypeOf(result.heartbeat.components)).toBe(Object.prototype);
        for (const part of result.dropped) expect(part.field).toMatch(/^components[.[]/);
      } else {
        expect(namedField(result.reason)).toMatch(/^components[.[]/);
      }
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    }),
    { numRuns: 500 },
  );
});

test('command acks: hostile payloads never throw and name the field', () => {
  fc.assert(
    fc.property(hostileValue.map(hostileJson), hostileString, (payload, serial) => {
      const result = parseCommandAck(`robot/${serial}/command/ack`, payload);
      if (result.ok) return;
      expect(namedField(result.reason)).toMatch(/^(topic|payload|\(root\)|commandId|status|message)(\.|$)/);
    }),
    { numRuns: 1000 },
  );
});
