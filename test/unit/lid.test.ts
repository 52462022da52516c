import type { Heartbeat } from '../../domain/heartbeat';
import {
  cycleClosed,
  cycleEnd,
  cycleStarted,
  guardStatus,
  initialLidTracker,
  isLocked,
  judgePin,
  lidCycleCompletedEvent,
  lidWorkFor,
  rememberLidSightings,
  openGuard,
  pinEntryEvents,
  registerPinOutcome,
  sameDigest,
  unlockSince,
  defaultLidSettings,
  type ActivePin,
  type PinGuard,
  type PinOutcome,
} from '../../domain/lid';

const policy = { attempts: 3, windowMs: 60_000, lockoutMs: 120_000 };
const active: ActivePin = { pinHash: 'a'.repeat(64), pinType: 'MERCHANT', contextId: 'delivery-1', expiresAt: 10_000 };

function hb(timestamp: number, overrides: Partial<Heartbeat> = {}): Heartbeat {
  return { serial: 'R1', timestamp, receivedAt: timestamp + 5, batteries: [], components: {}, events: [], ...overrides };
}

describe('judging a PIN entry', () => {
  it('accepts the active PIN before it expires', () => {
    expect(judgePin(active, 'a'.repeat(64), 9_999)).toBe('VALID');
  });

  it('refuses a wrong PIN, an expired one, and any PIN when none is set', () => {
    expect(judgePin(active, 'b'.repeat(64), 5_000)).toBe('WRONG');
    expect(judgePin(active, 'a'.repeat(64), 10_000)).toBe('EXPIRED');
    expect(judgePin(null, 'a'.repeat(64), 5_000)).toBe('NO_PIN');
  });

  it('compares digests whole', () => {
    expect(sameDigest('abc', 'abc')).toBe(true);
    expect(sameDigest('abc', 'abd')).toBe(false);
    expect(sameDigest('abc', 'abcd')).toBe(false);
  });
});

describe('brute-force lockout', () => {
  const apply = (outcomes: [PinOutcome, number][], start: PinGuard = openGuard) => {
    let guard = start;
    const locks: boolean[] = [];
    for (const [outcome, at] of outcomes) {
      const r = registerPinOutcome(guard, outcome, at, policy);
      guard = r.guard;
      locks.push(r.lockedNow);
    }
    return { guard, locks };
  };

  it('locks after the set number of wrong entries within the window, until the lockout ends', () => {
    const { guard, locks } = apply([['WRONG', 0], ['WRONG', 10_000], ['WRONG', 20_000]]);
    expect(locks).toEqual([false, false, true]);
    expect(guard.lockedUntil).toBe(140_000);
    expect(isLocked(guard, 139_999)).toBe(true);
    expect(isLocked(guard, 140_000)).toBe(false);
    expect(guardStatus(guard, 30_000, policy)).toEqual({ locked: true, lockedUntil: 140_000, failedAttempts: 0, attemptsLeft: 0 });
    expect(guardStatus(guard, 140_000, policy)).toMatchObject({ locked: false, lockedUntil: null, attemptsLeft: 3 });
  });

  it('starts the count again when the window has passed', () => {
    const { guard, locks } = apply([['WRONG', 0], ['WRONG', 10_000], ['WRONG', 70_001]]);
    expect(locks).toEqual([false, false, false]);
    expect(guard).toEqual({ failedAttempts: 1, windowStartedAt: 70_001, lockedUntil: null });
  });

  it('forgets wrong entries after a right one', () => {
    const { guard, locks } = apply([['WRONG', 0], ['WRONG', 1], ['VALID', 2], ['WRONG', 3], ['WRONG', 4]]);
    expect(locks.some(Boolean)).toBe(false);
    expect(guard.failedAttempts).toBe(2);
  });

  it('neither counts nor extends on entries that are refused while locked, expired or without a PIN', () => {
    const locked = apply([['WRONG', 0], ['WRONG', 1], ['WRONG', 2]]).guard;
    const after = apply([['LOCKED', 50_000], ['LOCKED', 60_000]], locked).guard;
    expect(after).toEqual(locked);
    expect(apply([['EXPIRED', 0], ['NO_PIN', 1], ['EXPIRED', 2], ['NO_PIN', 3]]).guard).toEqual(openGuard);
  });

  it('raises PinRejected with the reason, and PinEntryLocked when an entry locks the keypad', () => {
    const guard = { failedAttempts: 0, windowStartedAt: null, lockedUntil: 120_002 };
    const events = pinEntryEvents(
      { entryId: 'e1', serial: 'R1', source: 'KEYPAD', outcome: 'WRONG', at: 2, pinType: null, contextId: null, unlockCommandId: null, guard, lockedNow: true },
      policy,
    );
    expect(events.map((e) => e.type)).toEqual(['LidCycle.PinRejected', 'LidCycle.PinEntryLocked']);
    expect(events[0].data).toMatchObject({ reason: 'WRONG_PIN', failedAttempts: 3, entryId: 'e1' });
    expect(events[1].data).toMatchObject({ failedAttempts: 3, lockedUntil: new Date(120_002).toISOString() });
    expect(JSON.stringify(events)).not.toMatch(/pin"\s*:/i);
  });

  it('raises PinValidated with the PIN type, context and the unlock command', () => {
    const [event] = pinEntryEvents(
      { entryId: 'e2', serial: 'R1', source: 'KEYPAD', outcome: 'VALID', at: 5, pinType: 'CUSTOMER', contextId: 'd-9', unlockCommandId: 'c-1', guard: openGuard, lockedNow: false },
      policy,
    );
    expect(event).toMatchObject({ type: 'LidCycle.PinValidated', serial: 'R1', data: { pinType: 'CUSTOMER', contextId: 'd-9', unlockCommandId: 'c-1' } });
  });
});

describe('what the robot workflow takes from heartbeats', () => {
  const pinEvent = (timestamp: number) => ({ type: 'PIN_ENTRY', timestamp, pinHash: `h${timestamp}` });

  it('takes each PIN entry once, even from a redelivered or older heartbeat', () => {
    let tracker = initialLidTracker();
    const first = lidWorkFor(tracker, hb(100, { events: [pinEvent(90), pinEvent(95)] }), true);
    tracker = first.tracker;
    expect(first.work).toEqual([
      { kind: 'pin', pinHash: 'h90', timestamp: 90, receivedAt: 105 },
      { kind: 'pin', pinHash: 'h95', timestamp: 95, receivedAt: 105 },
    ]);
    expect(lidWorkFor(tracker, hb(100, { events: [pinEvent(90), pinEvent(95)] }), false).work).toEqual([]);
    // Too old to change the shadow, but its entry is new: it still counts.
    expect(lidWorkFor(tracker, hb(80, { events: [pinEvent(79)] }), false).work).toEqual([{ kind: 'pin', pinHash: 'h79', timestamp: 79, receivedAt: 85 }]);
  });

  it('ignores events that are not PIN entries or carry no hash', () => {
    const events = [{ type: 'BUTTON', timestamp: 1 }, { type: 'PIN_ENTRY', timestamp: 2 }];
    expect(lidWorkFor(initialLidTracker(), hb(10, { events }), true).work).toEqual([]);
  });

  it('sees the lid open and close, only from applied heartbeats and only on a change', () => {
    let tracker = initialLidTracker();
    const steps: [number, boolean | undefined, boolean][] = [
      [1, false, true],
      [2, true, true],
      [3, true, true],
      [4, undefined, true],
      [5, false, false],
      [6, false, true],
    ];
    const kinds: string[] = [];
    for (const [t, lidOpen, applied] of steps) {
      const r = lidWorkFor(tracker, hb(t, { lidOpen }), applied);
      tracker = r.tracker;
      kinds.push(...r.work.map((w) => `${w.kind}@${t}`));
    }
    expect(kinds).toEqual(['open@2', 'close@6']);
  });

  it('reports an opening then a closing in one batch, before any cycle is started', () => {
    const tracker = lidWorkFor(initialLidTracker(), hb(1, { lidOpen: false }), true).tracker;
    const open = lidWorkFor(tracker, hb(2, { lidOpen: true }), true);
    const close = lidWorkFor(open.tracker, hb(3, { lidOpen: false }), true);
    expect([...open.work, ...close.work]).toEqual([
      { kind: 'open', openedAt: 2, receivedAt: 7 },
      { kind: 'close', closedAt: 3, receivedAt: 8 },
    ]);
  });

  /** Feeds [robot time, lid open] in arrival order, as the robot workflow does; returns the lid work. */
  function lidWorkInArrivalOrder(arrivals: [number, boolean][], lateLid = true): string[] {
    let tracker = initialLidTracker();
    let newest = -Infinity;
    const work: string[] = [];
    for (const [t, lidOpen] of arrivals) {
      const heartbeat = hb(t, { lidOpen, receivedAt: 1_000 + work.length });
      const r = lidWorkFor(rememberLidSightings(tracker, [heartbeat]), heartbeat, t > newest, lateLid);
      newest = Math.max(newest, t);
      tracker = r.tracker;
      work.push(...r.work.map((w) => (w.kind === 'open' ? `open@${w.openedAt}` : w.kind === 'close' ? `close@${w.closedAt}` : 'pin')));
    }
    return work;
  }

  it('finds a lid cycle that newer heartbeats overtook: open from the late heartbeat, closed by the first sighting after it', () => {
    // Closed at 1; the lid opened at 2 and closed at 3, but closed heartbeats at 5 and 6 arrived first.
    expect(lidWorkInArrivalOrder([[1, false], [5, false], [6, false], [2, true], [3, false], [2, true]])).toEqual(['open@2', 'close@5']);
  });

  it('finds a close and reopening that newer heartbeats overtook while the lid is open', () => {
    expect(lidWorkInArrivalOrder([[1, false], [2, true], [6, true], [4, false], [5, true]])).toEqual(['open@2', 'close@4', 'open@6']);
  });

  it('leaves a late heartbeat alone when it is older than the last decided change, or no lid was decided', () => {
    // 3 and 4 lie inside the cycle 2..5 already decided; 0 before it.
    expect(lidWorkInArrivalOrder([[1, false], [2, true], [5, false], [3, false], [4, true], [0, true]])).toEqual(['open@2', 'close@5']);
    expect(lidWorkInArrivalOrder([[5, false], [2, true]])).toEqual([]);
  });

  it('does nothing with late heartbeats in runs started before it (lateLid off), yet remembers them', () => {
    expect(lidWorkInArrivalOrder([[1, false], [5, false], [2, true]], false)).toEqual([]);
  });

  it('keeps only the recent sightings', () => {
    let tracker = initialLidTracker();
    for (let t = 1; t <= 60; t++) tracker = lidWorkFor(rememberLidSightings(tracker, [hb(t, { lidOpen: false })]), hb(t, { lidOpen: false }), true).tracker;
    expect(tracker.lidSeen?.map((s) => s.at)).toEqual(Array.from({ length: 50 }, (_, i) => i + 11));
    // Older than all kept: closed by the earliest sighting still kept.
    expect(lidWorkFor(tracker, hb(5, { lidOpen: true }), false).work).toEqual([
      { kind: 'open', openedAt: 5, receivedAt: 10 },
      { kind: 'close', closedAt: 11, receivedAt: 10 },
    ]);
    expect(lidWorkFor(tracker, hb(15.5, { lidOpen: true }), false).work).toEqual([
      { kind: 'open', openedAt: 15.5, receivedAt: 20.5 },
      { kind: 'close', closedAt: 16, receivedAt: 20.5 },
    ]);
  });

  it('places a late heartbeat among those of its own batch, remembered first: each cycle closes at its own closed sighting', () => {
    const first = [hb(1, { lidOpen: false }), hb(10, { lidOpen: false })];
    let tracker = rememberLidSightings(initialLidTracker(), first);
    for (const heartbeat of first) tracker = lidWorkFor(tracker, heartbeat, true).tracker;
    const batch = [hb(2, { lidOpen: true }), hb(3, { lidOpen: false }), hb(4, { lidOpen: true }), hb(5, { lidOpen: false })];
    tracker = rememberLidSightings(tracker, batch);
    const work: string[] = [];
    for (const late of batch) {
      const r = lidWorkFor(tracker, late, false);
      tracker = r.tracker;
      work.push(...r.work.map((w) => (w.kind === 'open' ? `open@${w.openedAt}` : w.kind === 'close' ? `close@${w.closedAt}` : 'pin')));
    }
    expect(work).toEqual(['open@2', 'close@3', 'open@4', 'close@5']);
  });

  it('uses an unlock up to the grace period before an opening, never one before the last cycle', () => {
    const tracker = cycleClosed(cycleStarted(initialLidTracker(), { cycleId: 'c1', openedAt: 1_000, receivedAt: 1_000 }));
    expect(unlockSince(initialLidTracker(), 500_000, defaultLidSettings)).toBe(500_000 - defaultLidSettings.unlockGraceMs);
    expect(unlockSince(tracker, 2_000, defaultLidSettings)).toBe(1_000);
    expect(tracker.openCycle).toBeNull();
  });
});

describe('the lid cycle', () => {
  it('completes when the lid closes within the timeout by the robot clock, else times out', () => {
    expect(cycleEnd(1_000, 31_000, 30_000)).toBe('COMPLETE');
    expect(cycleEnd(1_000, 31_001, 30_000)).toBe('TIMEOUT');
  });

  it('reports the duration in seconds with the context and whether it was forced', () => {
    const event = lidCycleCompletedEvent(
      { cycleId: 'c1', serial: 'R1', contextId: 'd-1', pinType: 'MERCHANT', forced: false, unlockCommandId: 'u1', startedAt: 1_000 },
      13_500,
    );
    expect(event).toMatchObject({ type: 'LidCycle.Completed', serial: 'R1', data: { cycleId: 'c1', contextId: 'd-1', durationSeconds: 12.5, forced: false } });
  });
});
