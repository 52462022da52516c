import type { Heartbeat } from '../../domain/heartbeat';
import { decideForward, type ForwardMemo } from '../../domain/forwarding';

const intervalMs = 30_000;
const t0 = Date.parse('2024-01-10T12:00:00Z');

function heartbeat(second: number, patch: Partial<Heartbeat> = {}): Heartbeat {
  return {
    serial: 'ABC123',
    timestamp: t0 + second * 1000,
    receivedAt: t0 + second * 1000 + 40,
    location: { latitude: 37.7749, longitude: -122.4194, heading: 45 },
    batteries: [{ batteryIndex: 0, chargePercent: 87, isCharging: false, voltage: 48.2 }],
    components: { GPS: 'OK', CAMERAS: 'OK' },
    lidOpen: false,
    network: { type: 'CELLULAR', signalStrength: -85 },
    events: [],
    ...patch,
  };
}

/** Feeds heartbeats in arrival order, as the ingest worker does; returns which were forwarded. */
function forwarded(...hbs: Heartbeat[]): boolean[] {
  let memo: ForwardMemo | undefined;
  return hbs.map((hb) => {
    const decision = decideForward(memo, hb, intervalMs);
    memo = decision.memo;
    return decision.forward;
  });
}

describe('decideForward', () => {
  it('forwards the first heartbeat seen from a robot', () => {
    expect(forwarded(heartbeat(0))).toEqual([true]);
  });

  it('holds back unchanged telemetry within the interval and forwards once it has passed', () => {
    expect(forwarded(heartbeat(0), heartbeat(1), heartbeat(15), heartbeat(29), heartbeat(30), heartbeat(31), heartbeat(60))).toEqual([
      true,
      false,
      false,
      false,
      true,
      false,
      true,
    ]);
  });

  it('measures the interval from the last forwarded heartbeat, not the last one seen', () => {
    expect(forwarded(heartbeat(0), heartbeat(10, { lidOpen: true }), heartbeat(35, { lidOpen: true }), heartbeat(40, { lidOpen: true }))).toEqual([
      true,
      true,
      false,
      true,
    ]);
  });

  it.each<[string, Partial<Heartbeat>]>([
    ['the lid', { lidOpen: true }],
    ['a component code', { components: { GPS: 'OK', CAMERAS: 'TIMEOUT' } }],
    ['a new component', { components: { GPS: 'OK', CAMERAS: 'OK', LIDAR: 'READY' } }],
    ['the charge percent', { batteries: [{ batteryIndex: 0, chargePercent: 86, isCharging: false, voltage: 48.2 }] }],
    ['the charging flag', { batteries: [{ batteryIndex: 0, chargePercent: 87, isCharging: true, voltage: 48.2 }] }],
    ['a second battery', { batteries: [{ batteryIndex: 0, chargePercent: 87, isCharging: false }, { batteryIndex: 1, chargePercent: 50 }] }],
    ['the network type', { network: { type: 'WIFI', signalStrength: -85 } }],
  ])('forwards a change of %s at once', (_, change) => {
    expect(forwarded(heartbeat(0), heartbeat(1, change))).toEqual([true, true]);
  });

  it('forwards every heartbeat that carries robot events', () => {
    const pin = { type: 'PIN_ENTRY', pin: '1234', timestamp: t0 + 1500 };
    expect(forwarded(heartbeat(0), heartbeat(1, { events: [pin] }), heartbeat(2, { events: [{ ...pin, timestamp: t0 + 2500 }] }))).toEqual([
      true,
      true,
      true,
    ]);
  });

  it('does not forward telemetry that is not decided on: GPS moves, voltage, signal strength', () => {
    expect(
      forwarded(
        heartbeat(0),
        heartbeat(1, { location: { latitude: 37.78, longitude: -122.41, heading: 90, speedMph: 5 } }),
        heartbeat(2, { batteries: [{ batteryIndex: 0, chargePercent: 87, isCharging: false, voltage: 47.9, temperature: 40 }] }),
        heartbeat(3, { network: { type: 'CELLULAR', signalStrength: -60 } }),
      ),
    ).toEqual([true, false, false, false]);
  });

  it('forwards a heartbeat older than the newest seen only for its robot events, and a repeat of the newest not at all', () => {
    const pin = { type: 'PIN_ENTRY', pin: '1234', timestamp: t0 };
    const late = { receivedAt: t0 + 120_000 };
    expect(
      forwarded(
        heartbeat(10, { events: [{ ...pin, timestamp: t0 + 10_000 }] }),
        heartbeat(10, { ...late, events: [{ ...pin, timestamp: t0 + 10_000 }] }),
        heartbeat(5, { ...late, lidOpen: true, events: [pin] }),
        heartbeat(9, { ...late, components: { GPS: 'CRITICAL_FAULT' } }),
      ),
    ).toEqual([true, false, true, false]);
  });

  it('compares against the last forwarded state, so a change that reverts before forwarding is still seen as a change', () => {
    expect(forwarded(heartbeat(0), heartbeat(1, { lidOpen: true }), heartbeat(2, { lidOpen: false }), heartbeat(3))).toEqual([true, true, true, false]);
  });
});
