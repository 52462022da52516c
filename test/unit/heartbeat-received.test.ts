import type { Heartbeat } from '../../domain/heartbeat';
import { takeIn, type IntakeRules, type RobotIntake } from '../../domain/heartbeat-intake';
import { heartbeatEventId, heartbeatReceived } from '../../domain/heartbeat-received';

const rules: IntakeRules = { clock: { toleranceMs: 30_000, resetAfterMs: 10_000 }, forward: { intervalMs: 300_000, silenceMs: 30_000 } };
const T = Date.parse('2026-12-06T12:00:00Z');
const hb = (t: number, r: number): Heartbeat => ({ serial: 'A', timestamp: t, receivedAt: r, batteries: [], components: {}, lidOpen: false, events: [] });

/** The event ids of the heartbeats stored as newest, one heartbeat per batch. */
function eventIds(heartbeats: Heartbeat[]): string[] {
  let known = new Map<string, RobotIntake>();
  const ids: string[] = [];
  for (const h of heartbeats) {
    const result = takeIn(known, [h], rules);
    known = new Map([...known, ...result.robots]);
    const newest = result.newest.get('A');
    if (newest) ids.push(heartbeatReceived(newest, {} as never, []).id);
  }
  return ids;
}

test('a robot whose clock restarts from 1970 at every boot never repeats an event id', () => {
  // Two boots, each clock starting again at 1 s after the epoch, 15 s of heartbeats each.
  const boot = (at: number) => Array.from({ length: 15 }, (_, i) => hb(1000 + i * 1000, at + i * 1000));
  const ids = eventIds([hb(T, T), hb(T + 1000, T + 1000), ...boot(T + 60_000), ...boot(T + 120_000)]);
  expect(ids.length).toBeGreaterThan(10);
  expect(new Set(ids).size).toBe(ids.length);
});

test('a heartbeat of a robot with a right clock keeps the id of its robot time, delivered once or twice', () => {
  const [first] = eventIds([hb(T, T + 40)]);
  expect(first).toBe(heartbeatEventId('A', T));
  expect(eventIds([hb(T, T + 900)])).toEqual([first]);
});
