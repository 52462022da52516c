import fc from 'fast-check';
import type { Heartbeat } from '../../domain/heartbeat';
import { takeIn, type IntakeRules, type RobotIntake } from '../../domain/heartbeat-intake';

const rules: IntakeRules = { clock: { toleranceMs: 30_000, resetAfterMs: 10_000 }, forward: { intervalMs: 300_000, silenceMs: 30_000 } };
const T = Date.parse('2026-12-06T12:00:00Z');

function hb(serial: string, t: number, r: number, patch: Partial<Heartbeat> = {}): Heartbeat {
  return { serial, timestamp: t, receivedAt: r, batteries: [], components: { GPS: 'OK' }, lidOpen: false, events: [], ...patch };
}

/** Takes the heartbeats in batches of the given sizes, carrying what the projection keeps between them. */
function inBatches(heartbeats: Heartbeat[], sizes: number[]) {
  let known = new Map<string, RobotIntake>();
  const out = { placed: [] as Heartbeat[], forwards: [] as Heartbeat[], newest: new Map<string, Heartbeat>() };
  for (let i = 0, b = 0; i < heartbeats.length; b++) {
    const batch = heartbeats.slice(i, i + Math.max(1, sizes[b % sizes.length]));
    i += batch.length;
    const r = takeIn(known, batch, rules);
    known = new Map([...known, ...r.robots]);
    out.placed.push(...r.placed);
    out.forwards.push(...r.forwards);
    for (const [serial, h] of r.newest) out.newest.set(serial, h);
  }
  return { ...out, known };
}

test('a robot clock a day ahead is moved to the receipt time, its PIN entries with it', () => {
  const entry = { type: 'PIN_ENTRY', timestamp: T + 86_400_000 - 500, pinHash: 'h' };
  const { placed, forwards } = takeIn(new Map(), [hb('A', T, T + 40), hb('A', T + 86_400_000, T + 1040, { events: [entry] })], rules);
  expect(placed[1]).toMatchObject({ timestamp: T + 1040, robotTimestamp: T + 86_400_000, events: [{ timestamp: T + 540 }] });
  expect(forwards.map((f) => f.timestamp)).toEqual([T, T + 1040]);
});

test('liveness follows receipt time: heartbeats from a clock set back move last seen, a repeat does not', () => {
  const { robots } = takeIn(new Map(), [hb('A', T, T + 40), hb('A', T - 3_600_000, T + 1000), hb('A', T - 3_599_000, T + 2000), hb('A', T, T + 3000)], rules);
  expect(robots.get('A')!.lastSeenAt).toBe(T + 2000);
});

test('forwards the first heartbeat, changes and PIN entries, and holds back the rest, robot by robot', () => {
  const { forwards } = takeIn(
    new Map(),
    [hb('A', T, T), hb('B', T, T), hb('A', T + 1000, T + 1000), hb('A', T + 2000, T + 2000, { lidOpen: true }), hb('B', T + 1000, T + 1000)],
    rules,
  );
  expect(forwards.map((f) => `${f.serial}@${f.timestamp - T}`)).toEqual(['A@0', 'B@0', 'A@2000']);
});

test('any batching of the same arrivals decides the same: what one batch keeps is what the next reads', () => {
  const arrival = fc.record({
    serial: fc.constantFrom('A', 'B', 'C'),
    dt: fc.integer({ min: -40_000, max: 3_000 }),
    skew: fc.constantFrom(0, 0, 0, 86_400_000, -3_600_000),
    lid: fc.boolean(),
    gap: fc.integer({ min: 0, max: 40_000 }),
  });
  fc.assert(
    fc.property(fc.array(arrival, { minLength: 1, maxLength: 60 }), fc.array(fc.integer({ min: 1, max: 7 }), { minLength: 1, maxLength: 5 }), (arrivals, sizes) => {
      let r = T;
      const heartbeats = arrivals.map((a) => {
        r += a.gap;
        return hb(a.serial, r + a.dt + a.skew, r, { lidOpen: a.lid });
      });
      const whole = inBatches(heartbeats, [heartbeats.length]);
      const split = inBatches(heartbeats, sizes);
      expect(split.placed).toEqual(whole.placed);
      expect(split.forwards).toEqual(whole.forwards);
      expect(split.newest).toEqual(whole.newest);
      expect(split.known).toEqual(whole.known);
    }),
  );
});
