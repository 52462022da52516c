import type { Heartbeat } from './heartbeat';
import type { EventDraft } from './events';
import { changedBackAt, keepRecent } from './sightings';

/**
 * The Lid Service's rules (seed 001 "Lid Service", "Example 2: Lid Cycle Flow"): unlock PINs, how
 * a PIN entry is judged, brute-force lockout, and the lid cycle. Pure and free of Node built-ins,
 * because the robot and lid-cycle workflows run it too. PINs appear here only as keyed hashes
 * (domain/lid-pins.ts makes them); the plain PIN never gets this far.
 */

export const pinTypes = ['MERCHANT', 'CUSTOMER', 'OPERATOR'] as const;
export type PinType = (typeof pinTypes)[number];

/** `deviceless`: the backend alone validates; `magic-lid`: the PIN is also pushed to the robot (SET_PIN). */
export const pinFlows = ['deviceless', 'magic-lid'] as const;
export type PinFlow = (typeof pinFlows)[number];

export const pinEntrySources = ['KEYPAD', 'API'] as const;
export type PinEntrySource = (typeof pinEntrySources)[number];

export const pinOutcomes = ['VALID', 'WRONG', 'EXPIRED', 'NO_PIN', 'LOCKED'] as const;
export type PinOutcome = (typeof pinOutcomes)[number];

export const lidCycleStatuses = ['INIT', 'COMPLETE', 'TIMEOUT'] as const;
export type LidCycleStatus = (typeof lidCycleStatuses)[number];

/** What the backend keeps of an unlock PIN. */
export type ActivePin = { pinHash: string; pinType: PinType; contextId: string | null; expiresAt: number };

export type LockoutPolicy = { attempts: number; windowMs: number; lockoutMs: number };

/** Everything a robot workflow needs to run lid cycles; taken from configuration when it starts. */
export type LidSettings = {
  openTimeoutMs: number;
  /** An opening this soon after an unlock command belongs to that unlock; later ones are forced. */
  unlockGraceMs: number;
  commandTimeoutMs: number;
  lockout: LockoutPolicy;
};

export function lidSettings(config: {
  LID_OPEN_TIMEOUT_SECONDS: number;
  LID_UNLOCK_GRACE_SECONDS: number;
  COMMAND_TIMEOUT_SECONDS: number;
  PIN_LOCKOUT_ATTEMPTS: number;
  PIN_LOCKOUT_WINDOW_SECONDS: number;
  PIN_LOCKOUT_SECONDS: number;
}): LidSettings {
  return {
    openTimeoutMs: config.LID_OPEN_TIMEOUT_SECONDS * 1000,
    unlockGraceMs: config.LID_UNLOCK_GRACE_SECONDS * 1000,
    commandTimeoutMs: config.COMMAND_TIMEOUT_SECONDS * 1000,
    lockout: {
      attempts: config.PIN_LOCKOUT_ATTEMPTS,
      windowMs: config.PIN_LOCKOUT_WINDOW_SECONDS * 1000,
      lockoutMs: config.PIN_LOCKOUT_SECONDS * 1000,
    },
  };
}

/** Defaults for robot workflows started before their input carried settings. */
export const defaultLidSettings: LidSettings = {
  openTimeoutMs: 300_000,
  unlockGraceMs: 120_000,
  commandTimeoutMs: 30_000,
  lockout: { attempts: 5, windowMs: 300_000, lockoutMs: 300_000 },
};

// ---- PIN entries

/** Compares two hex digests in time independent of where they differ. */
export function sameDigest(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}

/** Judges an entry against the active PIN at server time `at`; the lockout is checked before. */
export function judgePin(active: ActivePin | null, enteredHash: string, at: number): Exclude<PinOutcome, 'LOCKED'> {
  if (!active) return 'NO_PIN';
  if (!sameDigest(active.pinHash, enteredHash)) return 'WRONG';
  return active.expiresAt <= at ? 'EXPIRED' : 'VALID';
}

/**
 * Brute-force guard of one robot's keypad: `attempts` wrong entries within `windowMs` of the first
 * of them lock PIN entry for `lockoutMs`. A right PIN starts the count again; entries while locked
 * are refused without being judged and do not extend the lock.
 */
export type PinGuard = { failedAttempts: number; windowStartedAt: number | null; lockedUntil: number | null };

export const openGuard: PinGuard = { failedAttempts: 0, windowStartedAt: null, lockedUntil: null };

export const isLocked = (guard: PinGuard, at: number) => guard.lockedUntil !== null && at < guard.lockedUntil;

export function registerPinOutcome(
  guard: PinGuard,
  outcome: PinOutcome,
  at: number,
  policy: LockoutPolicy,
): { guard: PinGuard; lockedNow: boolean } {
  if (outcome === 'LOCKED') return { guard, lockedNow: false };
  if (outcome === 'VALID') return { guard: openGuard, lockedNow: false };
  if (outcome !== 'WRONG') return { guard, lockedNow: false };
  const inWindow = guard.windowStartedAt !== null && at - guard.windowStartedAt <= policy.windowMs;
  const failedAttempts = inWindow ? guard.failedAttempts + 1 : 1;
  const windowStartedAt = inWindow ? guard.windowStartedAt : at;
  if (failedAttempts >= policy.attempts) {
    return { guard: { failedAttempts: 0, windowStartedAt: null, lockedUntil: at + policy.lockoutMs }, lockedNow: true };
  }
  return { guard: { failedAttempts, windowStartedAt, lockedUntil: guard.lockedUntil }, lockedNow: false };
}

/** What the API shows of a guard at `at`: a lapsed lock or window counts as none. */
export function guardStatus(guard: PinGuard, at: number, policy: LockoutPolicy) {
  const locked = isLocked(guard, at);
  const windowOpen = guard.windowStartedAt !== null && at - guard.windowStartedAt <= policy.windowMs;
  return {
    locked,
    lockedUntil: locked ? guard.lockedUntil : null,
    failedAttempts: windowOpen ? guard.failedAttempts : 0,
    attemptsLeft: locked ? 0 : policy.attempts - (windowOpen ? guard.failedAttempts : 0),
  };
}

const rejectionReasons: Record<Exclude<PinOutcome, 'VALID'>, string> = {
  WRONG: 'WRONG_PIN',
  EXPIRED: 'PIN_EXPIRED',
  NO_PIN: 'NO_ACTIVE_PIN',
  LOCKED: 'LOCKED_OUT',
};

const iso = (ms: number) => new Date(ms).toISOString();

export type JudgedEntry = {
  entryId: string;
  serial: string;
  source: PinEntrySource;
  outcome: PinOutcome;
  at: number;
  pinType: PinType | null;
  contextId: string | null;
  unlockCommandId: string | null;
  guard: PinGuard;
  lockedNow: boolean;
};

/** `LidCycle.PinValidated` or `LidCycle.PinRejected`, and `LidCycle.PinEntryLocked` when the entry locked the keypad. */
export function pinEntryEvents(e: JudgedEntry, policy: LockoutPolicy): EventDraft[] {
  const base = { entryId: e.entryId, source: e.source, enteredAt: iso(e.at) };
  const events: EventDraft[] = [];
  if (e.outcome === 'VALID') {
    events.push({
      type: 'LidCycle.PinValidated',
      serial: e.serial,
      occurredAt: iso(e.at),
      data: { ...base, pinType: e.pinType, contextId: e.contextId, unlockCommandId: e.unlockCommandId },
    });
  } else {
    events.push({
      type: 'LidCycle.PinRejected',
      serial: e.serial,
      occurredAt: iso(e.at),
      data: { ...base, reason: rejectionReasons[e.outcome], failedAttempts: e.lockedNow ? policy.attempts : e.guard.failedAttempts },
    });
  }
  if (e.lockedNow) {
    events.push({
      type: 'LidCycle.PinEntryLocked',
      serial: e.serial,
      occurredAt: iso(e.at),
      data: {
        source: e.source,
        failedAttempts: policy.attempts,
        windowSeconds: policy.windowMs / 1000,
        lockedUntil: iso(e.guard.lockedUntil!),
      },
    });
  }
  return events;
}

// ---- what the robot workflow takes from heartbeats

/**
 * The robot workflow's lid bookkeeping, carried through continue-as-new: the last lid state seen,
 * the open cycle, and the robot timestamps of recent PIN entries (a redelivered heartbeat must not
 * count an entry twice).
 */
export type LidTracker = {
  lidOpen: boolean | null;
  /** Robot time of the last lid change decided; absent in runs started before late heartbeats were placed. */
  lidChangedAt?: number;
  /** Recent lid states by robot time, oldest first, for placing a late heartbeat among them. */
  lidSeen?: LidSighting[];
  openCycle: { cycleId: string; openedAt: number; receivedAt: number } | null;
  /** Server time the last cycle started: an unlock before it is used up. */
  lastCycleReceivedAt: number | null;
  recentPinEntries: number[];
};

export const initialLidTracker = (): LidTracker => ({ lidOpen: null, openCycle: null, lastCycleReceivedAt: null, recentPinEntries: [] });

const RECENT_PIN_ENTRIES = 100;

export type LidSighting = { at: number; open: boolean };
const LID_SIGHTINGS_KEPT = 50;

export type LidWork =
  | { kind: 'pin'; pinHash: string; timestamp: number; receivedAt: number }
  | { kind: 'open'; openedAt: number; receivedAt: number }
  | { kind: 'close'; closedAt: number; receivedAt: number };

/**
 * What one heartbeat asks of the lid service, in order: its new PIN entries (from any heartbeat,
 * even one too old to change the shadow), then a lid change: from a heartbeat that was applied
 * (newer than every one before it), or, with `lateLid`, from a late one that shows an opening and
 * closing the heartbeats in arrival order hid, placed among the sightings `rememberLidSightings`
 * keeps (see `lidMovedUnseen`). A close names no cycle: the opening before it may be in the same
 * batch, its cycle not started yet.
 */
export function lidWorkFor(tracker: LidTracker, hb: Heartbeat, applied: boolean, lateLid = true): { tracker: LidTracker; work: LidWork[] } {
  const work: LidWork[] = [];
  let recent = tracker.recentPinEntries;
  for (const e of hb.events) {
    if (e.type !== 'PIN_ENTRY' || !e.pinHash) continue;
    const tooOld = recent.length >= RECENT_PIN_ENTRIES && e.timestamp < recent[0];
    if (tooOld || recent.includes(e.timestamp)) continue;
    recent = [...recent, e.timestamp].sort((a, b) => a - b).slice(-RECENT_PIN_ENTRIES);
    work.push({ kind: 'pin', pinHash: e.pinHash, timestamp: e.timestamp, receivedAt: hb.receivedAt });
  }
  let next: LidTracker = { ...tracker, recentPinEntries: recent };
  if (hb.lidOpen === undefined) return { tracker: next, work };
  if (applied && hb.lidOpen !== tracker.lidOpen) {
    next = { ...next, lidOpen: hb.lidOpen, lidChangedAt: hb.timestamp };
    if (hb.lidOpen) work.push({ kind: 'open', openedAt: hb.timestamp, receivedAt: hb.receivedAt });
    else if (tracker.lidOpen) work.push({ kind: 'close', closedAt: hb.timestamp, receivedAt: hb.receivedAt });
  } else if (!applied && lateLid) {
    const back = lidMovedUnseen(tracker, hb.timestamp, hb.lidOpen);
    if (back !== null) {
      const [first, second]: ['open' | 'close', 'open' | 'close'] = hb.lidOpen ? ['open', 'close'] : ['close', 'open'];
      work.push(lidChange(first, hb.timestamp, hb.receivedAt), lidChange(second, back, hb.receivedAt));
      next = { ...next, lidChangedAt: back };
    }
  }
  return { tracker: next, work };
}

const lidChange = (kind: 'open' | 'close', at: number, receivedAt: number): LidWork =>
  kind === 'open' ? { kind, openedAt: at, receivedAt } : { kind, closedAt: at, receivedAt };

/**
 * For a heartbeat older than the newest applied: when its lid differs from the lid decided since
 * before it, the lid moved and moved back while newer heartbeats overtook this one (a broker resends
 * a reconnecting subscriber's backlog interleaved with live messages). Returns when it moved back
 * (`changedBackAt`). A heartbeat from before the last decided change changes nothing: its cycles
 * were already decided.
 */
function lidMovedUnseen(tracker: LidTracker, at: number, open: boolean): number | null {
  const { lidOpen: current, lidChangedAt } = tracker;
  if (current === null || lidChangedAt === undefined || open === current || at <= lidChangedAt) return null;
  return changedBackAt(tracker.lidSeen ?? [], at, (s) => s.open === current);
}

/**
 * Remembers a batch's lid sightings; the robot workflow calls it before taking the batch's
 * heartbeats one by one, so that a late one is placed among those of its own batch too.
 */
export function rememberLidSightings(tracker: LidTracker, heartbeats: Heartbeat[]): LidTracker {
  const sightings = heartbeats.flatMap((hb) => (hb.lidOpen === undefined ? [] : [{ at: hb.timestamp, open: hb.lidOpen }]));
  return { ...tracker, lidSeen: keepRecent(tracker.lidSeen ?? [], sightings, LID_SIGHTINGS_KEPT) };
}

export function cycleStarted(tracker: LidTracker, cycle: { cycleId: string; openedAt: number; receivedAt: number }): LidTracker {
  return { ...tracker, openCycle: cycle, lastCycleReceivedAt: cycle.receivedAt };
}

export const cycleClosed = (tracker: LidTracker): LidTracker => ({ ...tracker, openCycle: null });

/** Unlock commands issued after this (server time) can explain an opening at `receivedAt`. */
export function unlockSince(tracker: LidTracker, receivedAt: number, settings: LidSettings): number {
  return Math.max(tracker.lastCycleReceivedAt ?? 0, receivedAt - settings.unlockGraceMs);
}

// ---- the lid cycle

/** Robot clock for the duration; a lid that closed within the timeout completes the cycle. */
export function cycleEnd(openedAt: number, closedAt: number, timeoutMs: number): 'COMPLETE' | 'TIMEOUT' {
  return closedAt - openedAt <= timeoutMs ? 'COMPLETE' : 'TIMEOUT';
}

export type LidCycleFacts = {
  cycleId: string;
  serial: string;
  contextId: string | null;
  pinType: PinType | null;
  forced: boolean;
  unlockCommandId: string | null;
  startedAt: number;
};

function cycleData(c: LidCycleFacts) {
  return { cycleId: c.cycleId, contextId: c.contextId, pinType: c.pinType, forced: c.forced, unlockCommandId: c.unlockCommandId, startedAt: iso(c.startedAt) };
}

export function lidCycleStartedEvent(c: LidCycleFacts): EventDraft {
  return { type: 'LidCycle.Started', serial: c.serial, occurredAt: iso(c.startedAt), data: cycleData(c) };
}

export function lidCycleCompletedEvent(c: LidCycleFacts, endedAt: number): EventDraft {
  return {
    type: 'LidCycle.Completed',
    serial: c.serial,
    occurredAt: iso(endedAt),
    data: { ...cycleData(c), endedAt: iso(endedAt), durationSeconds: Math.max(0, endedAt - c.startedAt) / 1000 },
  };
}

export function lidCycleTimeoutEvent(c: LidCycleFacts, at: number, timeoutMs: number): EventDraft {
  return { type: 'LidCycle.Timeout', serial: c.serial, occurredAt: iso(at), data: { ...cycleData(c), timeoutSeconds: timeoutMs / 1000 } };
}
