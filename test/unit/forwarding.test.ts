import type { Heartbeat } from '../../domain/heartbeat';
import { decideForward, type ForwardMemo } from '../../domain/forwarding';

const rule = { intervalMs: 30_000, silenceMs: 20_000 };
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
    const decision = decideForward(memo, hb, rule);
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
    const open = { lidOpen: true };
    expect(forwarded(heartbeat(0), heartbeat(10, open), heartbeat(20, open), heartbeat(35, open), heartbeat(40, open))).toEqual([true, true, false, false, true]);
  });

  it.each<[string, Partial<Heartbeat>]>([
    ['the lid', { lidOpen: true }],
    ['a component code', { components: { GPS: 'OK', CAMERAS: 'TIMEOUT' } }],
    ['a new component', { components: { GPS: 'OK', CAMERAS: 'OK', LIDAR: 'READY' } }],
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

  it('does not forward telemetry no decision of the workflow reads: GPS, batteries, network', () => {
    expect(
      forwarded(
        heartbeat(0),
        heartbeat(1, { location: { latitude: 37.78, longitude: -122.41, heading: 90, speedMph: 5 } }),
        heartbeat(2, { batteries: [{ batteryIndex: 0, chargePercent: 86, isCharging: true, voltage: 47.9, temperature: 40 }] }),
        heartbeat(3, { batteries: [{ batteryIndex: 0, chargePercent: 86 }, { batteryIndex: 1, chargePercent: 50 }] }),
        heartbeat(4, { network: { type: 'WIFI', signalStrength: -60 } }),
      ),
    ).toEqual([true, false, false, false, false]);
  });

  it('forwards the first heartbeat after a silence the workflow may have marked offline, however unchanged', () => {
    expect(forwarded(heartbeat(0), heartbeat(1), heartbeat(19), heartbeat(40), heartbeat(41))).toEqual([true, false, false, true, false]);
  });

  it('forwards a heartbeat older than the newest seen for its robot events, not for telemetry, and a repeat of the newest not at all', () => {
    const pin = { type: 'PIN_ENTRY', pin: '1234', timestamp: t0 };
    const late = { receivedAt: t0 + 120_000 };
    expect(
      forwarded(
        heartbeat(10, { events: [{ ...pin, timestamp: t0 + 10_000 }] }),
        heartbeat(10, { ...late, events: [{ ...pin, timestamp: t0 + 10_000 }] }),
        heartbeat(5, { ...late, events: [pin] }),
        heartbeat(9, { ...late, network: { type: 'WIFI', signalStrength: -60 } }),
      ),
    ).toEqual([true, false, true, false]);
  });

  it('forwards a late heartbeat whose lid or component codes differ from the last forwarded: a change newer ones overtook', () => {
    const late = { receivedAt: t0 + 1_000 };
    const open = { ...late, lidOpen: true };
    // 10 and 11 came live before the backlog 2..5: the workflow must see the lid open at 2 and closed at 5.
    expect(forwarded(heartbeat(0), heartbeat(10), heartbeat(11), heartbeat(2, open), heartbeat(3, open), heartbeat(5, late), heartbeat(4, open))).toEqual([
      true,
      false,
      false,
      true,
      false,
      true,
      true,
    ]);
    // The next live heartbeat brings the workflow back to the newest lid.
    expect(forwarded(heartbeat(10), heartbeat(6, open), heartbeat(12))).toEqual([true, true, true]);
    // A component code the same way; a late heartbeat like the last forwarded is not.
    const timeout = { ...late, components: { GPS: 'OK', CAMERAS: 'TIMEOUT' } } as const;
    expect(forwarded(heartbeat(10), heartbeat(6, timeout), heartbeat(7, timeout), heartbeat(8, late))).toEqual([true, true, false, true]);
  });

  it('compares against the last forwarded state, so a change that reverts before forwarding is still seen as a change', () => {
    expect(forwarded(heartbeat(0), heartbeat(1, { lidOpen: true }), heartbeat(2, { lidOpen: false }), heartbeat(3))).toEqual([true, true, true, false]);
  });
});
