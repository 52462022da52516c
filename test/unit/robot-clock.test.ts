import { placeOnClock, unknownClock, type ClockRule, type Placed, type RobotClock } from '../../domain/robot-clock';

const rule: ClockRule = { toleranceMs: 30_000, resetAfterMs: 10_000 };
const T = Date.parse('2026-12-06T12:00:00Z');
const DAY = 86_400_000;
const HOUR = 3_600_000;

/** Heartbeats as [robot time, server receipt time], taken in arrival order. */
function place(...heartbeats: [number, number][]): Placed[] {
  let clock: RobotClock = unknownClock;
  return heartbeats.map(([t, r]) => {
    const placed = placeOnClock(clock, t, r, rule);
    clock = placed.clock;
    return placed;
  });
}

/** A robot publishing every second from `from` (server time) for `n` seconds, its clock off by `skew`. */
const publishing = (from: number, n: number, skew = 0, latency = 40): [number, number][] =>
  Array.from({ length: n }, (_, i) => [from + i * 1000 + skew, from + i * 1000 + latency]);

const newestFlags = (placed: Placed[]) => placed.map((p) => p.newest);

describe('a robot clock that is right', () => {
  it('takes every heartbeat at its own time', () => {
    const placed = place(...publishing(T, 5));
    expect(placed.map((p) => p.at)).toEqual(publishing(T, 5).map(([t]) => t));
    expect(newestFlags(placed)).toEqual([true, true, true, true, true]);
    expect(placed.every((p) => p.epoch === null)).toBe(true);
  });

  it('places a late heartbeat by its time, as older than the newest, and a repeat as no newer', () => {
    const [a, b, c, late, again] = place([T, T + 40], [T + 1000, T + 1040], [T + 2000, T + 2040], [T + 1500, T + 2100], [T + 2000, T + 2200]);
    expect(newestFlags([a, b, c, late, again])).toEqual([true, true, true, false, false]);
    expect(late.at).toBe(T + 1500);
  });

  it('keeps robot-time order through jitter of a few seconds both ways', () => {
    const placed = place([T + 3000, T + 40], [T - 2000, T + 1040], [T + 5000, T + 2040], [T + 2500, T + 3040]);
    expect(placed.map((p) => p.at)).toEqual([T + 3000, T - 2000, T + 5000, T + 2500]);
    expect(newestFlags(placed)).toEqual([true, false, true, false]);
  });
});

describe('a clock that jumps ahead', () => {
  it('takes one heartbeat dated a day ahead at its receipt time, and the normal ones after it as newest', () => {
    const placed = place(...publishing(T, 3), [T + 3000 + DAY, T + 3040], ...publishing(T + 4000, 5));
    expect(placed[3]).toMatchObject({ at: T + 3040, newest: true, epoch: 'ahead' });
    expect(newestFlags(placed)).toEqual(Array(9).fill(true));
    expect(placed[4].epoch).toBe('restored');
    expect(Math.max(...placed.map((p) => p.at))).toBeLessThan(T + 10_000);
  });

  it('keeps a clock that stays a day ahead on one epoch: robot-time order and repeats still hold', () => {
    const ahead = publishing(T, 5, DAY);
    const placed = place(...ahead, ahead[2], [T + 3500 + DAY, T + 6000]);
    expect(placed.slice(1, 5).map((p) => p.at - placed[0].at)).toEqual([1000, 2000, 3000, 4000]);
    expect(newestFlags(placed)).toEqual([true, true, true, true, true, false, false]);
    expect(placed.filter((p) => p.epoch === 'ahead')).toHaveLength(1);
  });
});

describe('a clock set back', () => {
  it.each([
    ['an hour', -HOUR],
    ['to 1970', -(T - 5_000)],
  ])('set back %s: the heartbeats after it become newest once the reset window has passed, and stay on one epoch', (_, skew) => {
    const before = place(...publishing(T, 5));
    let clock = before[4].clock;
    const after = publishing(T + 5000, 20, skew).map(([t, r]) => {
      const placed = placeOnClock(clock, t, r, rule);
      clock = placed.clock;
      return placed;
    });
    const firstNewest = after.findIndex((p) => p.newest);
    expect(after[firstNewest].epoch).toBe('set-back');
    // Newest from the first heartbeat at least resetAfterMs after the first older-dated one.
    expect(firstNewest).toBe(10);
    expect(newestFlags(after.slice(firstNewest))).toEqual(Array(20 - firstNewest).fill(true));
    expect(after[firstNewest].at).toBeGreaterThan(before[4].at);
    expect(after.filter((p) => p.epoch !== null)).toHaveLength(1);
  });

  it('is not mistaken for a broker redelivering written heartbeats after an ingest restart, followed by the backlog', () => {
    const live = publishing(T, 10);
    // The ingest was down 60 s: the broker resends the last 5 written but unacknowledged, then the 60 s backlog in order.
    const back = T + 70_000;
    const resent = live.slice(5).map(([t], i): [number, number] => [t, back + i]);
    const backlog = publishing(T + 10_000, 60).map(([t], i): [number, number] => [t, back + 10 + i]);
    const placed = place(...live, ...resent, ...backlog);
    expect(placed.every((p) => p.epoch === null)).toBe(true);
    expect(newestFlags(placed.slice(10, 15))).toEqual([false, false, false, false, false]);
    expect(placed.slice(15).every((p) => p.newest && p.at === p.clock.newestAt)).toBe(true);
  });

  it('is not mistaken for the late heartbeats of a robot that has gone quiet', () => {
    const live = publishing(T, 10);
    const late = live.slice(2, 6).map(([t], i): [number, number] => [t, T + 60_000 + i * 5]);
    const placed = place(...live, ...late, [T + 3000, T + 90_000]);
    expect(placed.slice(10).every((p) => !p.newest && p.epoch === null)).toBe(true);
  });

  it('counts its heartbeats as signs of life from the second on, before its new epoch starts', () => {
    const placed = place(...publishing(T, 3), ...publishing(T + 3000, 12, -HOUR));
    expect(placed.slice(3).map((p) => p.live)).toEqual([false, ...Array(11).fill(true)]);
  });

  it('counts neither a repeat nor a late heartbeat nor a replayed backlog as a sign of life', () => {
    const live = publishing(T, 10);
    const repeat: [number, number] = [T + 9000, T + 11_000];
    const late: [number, number] = [T + 4000, T + 20_000];
    // A backlog a minute old, delivered in 100 ms.
    const backlog = publishing(T - 70_000, 60).map(([t], i): [number, number] => [t, T + 21_000 + i * 2]);
    const placed = place(...live, repeat, late, ...backlog);
    expect(placed.slice(0, 10).every((p) => p.live)).toBe(true);
    expect(placed.slice(10).filter((p) => p.live)).toHaveLength(0);
  });

  it('returns to the robot clock once it is right again', () => {
    const placed = place(...publishing(T, 2), ...publishing(T + 2000, 15, -HOUR), ...publishing(T + 17_000, 3));
    const last = placed.slice(-3);
    expect(last[0]).toMatchObject({ newest: true, epoch: 'restored', at: T + 17_000 });
    expect(last.map((p) => p.clock.offsetMs)).toEqual([0, 0, 0]);
  });
});
