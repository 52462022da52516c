import type { Heartbeat } from './heartbeat';
import { decideForward, type ForwardRule } from './forwarding';
import { placeOnClock, unknownClock, type ClockRule, type EpochChange, type RobotClock } from './robot-clock';
import { mergeParts, noParts, updatableFields, type DeviceParts, type UpdatedField } from './device-parts';

/**
 * How the ingest takes a batch of heartbeats in, decided from what the projection holds of each
 * robot (read under a row lock, so any number of ingest workers, on any distribution of a robot's
 * messages, decide as one would): each heartbeat's time on the robot's clock line
 * (domain/robot-clock.ts), which one is the robot's newest, when it was last heard from (server
 * receipt time of a heartbeat that shows it is publishing, whatever its clock says), and which heartbeats its workflow must see
 * (domain/forwarding.ts).
 */

/** What the projection keeps of a robot for these decisions. */
export type RobotIntake = {
  clock: RobotClock;
  /** Server time the robot was last heard from. */
  lastSeenAt: number | null;
  /** The last heartbeat queued for the robot workflow: its fingerprint and receipt time. */
  forwarded: { fingerprint: string; at: number } | null;
  /** What the robot's newest heartbeats reported, part by part (domain/device-parts.ts). */
  parts: DeviceParts | null;
};

export const newRobotIntake: RobotIntake = { clock: unknownClock, lastSeenAt: null, forwarded: null, parts: null };

export type IntakeRules = { clock: ClockRule; forward: ForwardRule };

export type IntakeResult = {
  /** Every heartbeat, in arrival order, with its time on the robot's clock line. */
  placed: Heartbeat[];
  /** Per robot, its newest heartbeat if this batch brought a newer one. */
  newest: Map<string, Heartbeat>;
  /** Per robot with a newer heartbeat, the Device fields the batch changed. */
  updatedFields: Map<string, UpdatedField[]>;
  /** Heartbeats the robot workflows must see, in arrival order. */
  forwards: Heartbeat[];
  /** What to keep of every robot in the batch. */
  robots: Map<string, RobotIntake>;
  /** Heartbeats whose time differs from the robot's own clock, and the epochs started. */
  corrected: number;
  epochs: EpochChange[];
};

export function takeIn(known: ReadonlyMap<string, RobotIntake>, heartbeats: Heartbeat[], rules: IntakeRules): IntakeResult {
  const robots = new Map<string, RobotIntake>();
  const result: IntakeResult = { placed: [], newest: new Map(), updatedFields: new Map(), forwards: [], robots, corrected: 0, epochs: [] };
  for (const raw of heartbeats) {
    const before = robots.get(raw.serial) ?? known.get(raw.serial) ?? newRobotIntake;
    const placed = placeOnClock(before.clock, raw.timestamp, raw.receivedAt, rules.clock);
    const hb = onClockLine(raw, placed.at);
    if (placed.at !== raw.timestamp) result.corrected += 1;
    if (placed.epoch) result.epochs.push(placed.epoch);
    const memo = before.forwarded && {
      fingerprint: before.forwarded.fingerprint,
      forwardedAt: before.forwarded.at,
      newestTimestamp: before.clock.newestAt ?? Number.NEGATIVE_INFINITY,
      lastReceivedAt: before.clock.newestReceivedAt ?? before.lastSeenAt ?? Number.NEGATIVE_INFINITY,
    };
    const { forward, memo: after } = decideForward(memo ?? undefined, hb, rules.forward);
    if (forward) result.forwards.push(hb);
    let parts = before.parts;
    if (placed.newest) {
      const merged = mergeParts(parts ?? noParts, hb);
      parts = merged.parts;
      const fields = new Set([...(result.updatedFields.get(hb.serial) ?? []), ...merged.changed]);
      result.updatedFields.set(hb.serial, updatableFields.filter((f) => fields.has(f)));
      result.newest.set(hb.serial, hb);
    }
    robots.set(hb.serial, {
      clock: placed.clock,
      lastSeenAt: placed.live ? Math.max(before.lastSeenAt ?? hb.receivedAt, hb.receivedAt) : before.lastSeenAt,
      forwarded: { fingerprint: after.fingerprint, at: after.forwardedAt },
      parts,
    });
    result.placed.push(hb);
  }
  return result;
}

/** The heartbeat at time `at`, its robot events moved with it; the robot's own reading kept beside. */
function onClockLine(hb: Heartbeat, at: number): Heartbeat {
  if (at === hb.timestamp) return hb;
  const shift = at - hb.timestamp;
  return { ...hb, timestamp: at, robotTimestamp: hb.robotTimestamp ?? hb.timestamp, events: hb.events.map((e) => ({ ...e, timestamp: e.timestamp + shift })) };
}
