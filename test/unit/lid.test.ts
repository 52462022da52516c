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
