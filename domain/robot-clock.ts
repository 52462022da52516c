/**
 * Robot clocks are not trusted (CONTRACT.md "MQTT"). Every heartbeat is given a time on one line
 * that only moves forward with the robot: its own timestamp while the robot's clock agrees with the
 * server, and otherwise its timestamp shifted by the offset of the robot's current clock epoch. A
 * clock that jumps ahead, or back, starts a new epoch aligned to the server's receipt time, so a
 * wrong clock never freezes the projection or the workflow's decisions, and heartbeats within one
 * epoch keep their robot-time order (late and redelivered ones are placed and recognised as before).
 *
 * The rules, for a heartbeat with robot time `t` received at server time `r`:
 * 1. `t` within `toleranceMs` of `r`: the clock is right; its time is `t`, and a robot on a shifted
 *    epoch whose clock is right again returns to it with its next newest heartbeat.
 * 2. `t` shifted by the epoch's offset lands more than `toleranceMs` ahead of `r`: the clock jumped
 *    ahead (or a heartbeat of an earlier epoch came late); a new epoch starts at `r`.
 * 3. `t` shifted lands before the newest heartbeat: a late heartbeat, placed by its time; unless
 *    older-dated heartbeats have kept arriving for `resetAfterMs` with none newer among them, their
 *    robot time running with the server's, and this one is more than `toleranceMs` behind `r`:
 *    then the clock was set back (to an hour ago, to 1970) and a new epoch starts at `r`. A burst
 *    of redelivered or backlogged heartbeats comes and goes in far less time and is followed by
 *    newer ones; the late heartbeats of a robot gone quiet do not advance with the server's time.
 * A new epoch's first heartbeat is always the robot's newest.
 *
 * Liveness is a receipt time, never the robot's clock, but not every receipt is a sign of life: a
 * heartbeat is one (`live`) when it is the robot's newest, or when it is one of a run of
 * older-dated heartbeats whose robot time runs with the server's (a clock set back, before its new
 * epoch starts). A redelivered duplicate, a late heartbeat within the tolerance, or a backlog
 * replayed in a burst after an outage is not: it would keep a robot that went silent online.
 */

export type ClockRule = {
  /** How far a robot's clock may differ from the server's and still be taken as it is. */
  toleranceMs: number;
  /** How long the newest heartbeat may stand unovertaken while older-dated ones keep arriving. */
  resetAfterMs: number;
};

/** What the projection keeps of a robot's clock. */
export type RobotClock = {
  /** Added to the robot's timestamps in the current epoch; 0 while the clock is right. */
  offsetMs: number;
  /** Time (on this line) of the newest heartbeat; null before the first. */
  newestAt: number | null;
  /** Server time the newest heartbeat was received. */
  newestReceivedAt: number | null;
  /** The first heartbeat dated before the newest since the newest came (server time, and its time); null if none. */
  behind: { since: number; at: number } | null;
};

export const unknownClock: RobotClock = { offsetMs: 0, newestAt: null, newestReceivedAt: null, behind: null };

export type EpochChange = 'ahead' | 'set-back' | 'restored';

export type Placed = {
  /** The heartbeat's time on the robot's line. */
  at: number;
  /** Newer than every heartbeat before it: it is the robot's newest now. */
  newest: boolean;
  clock: RobotClock;
  epoch: EpochChange | null;
  /** Its receipt shows the robot is publishing now (see above). */
  live: boolean;
};

export function placeOnClock(clock: RobotClock, robotTime: number, receivedAt: number, rule: ClockRule): Placed {
  const { offsetMs, newestAt, behind } = clock;
  const newer = (at: number) => newestAt === null || at > newestAt;
  const take = (at: number, offset: number, epoch: EpochChange | null): Placed =>
    newer(at)
      ? { at, newest: true, clock: { offsetMs: offset, newestAt: at, newestReceivedAt: receivedAt, behind: null }, epoch, live: true }
      : { at, newest: false, clock: behind === null ? { ...clock, behind: { since: receivedAt, at } } : clock, epoch: null, live: runsWithServer(at) };
  // Later in robot time than the run's first, by no more than twice the server time since (plus a tick).
  const runsWithServer = (at: number) =>
    behind !== null && at < receivedAt - rule.toleranceMs && at > behind.at && at - behind.at <= 2 * (receivedAt - behind.since) + 1000;
  const startEpoch = (epoch: EpochChange): Placed => {
    const at = Math.max(receivedAt, newestAt === null ? receivedAt : newestAt + 1);
    return take(at, at - robotTime, epoch);
  };

  if (Math.abs(robotTime - receivedAt) <= rule.toleranceMs) return take(robotTime, 0, offsetMs === 0 ? null : 'restored');
  const shifted = robotTime + offsetMs;
  if (shifted > receivedAt + rule.toleranceMs) return startEpoch('ahead');
  if (newer(shifted)) return take(shifted, offsetMs, null);
  const setBack =
    behind !== null &&
    receivedAt - behind.since >= rule.resetAfterMs &&
    // A running clock advances with the server's; half of it leaves room for pauses in publishing.
    shifted - behind.at >= (receivedAt - behind.since) / 2 &&
    shifted < receivedAt - rule.toleranceMs;
  if (setBack) return startEpoch('set-back');
  return take(shifted, offsetMs, null);
}
