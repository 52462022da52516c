/**
 * Offline detection. The ingest worker's silence sweeper (ingest/silence-sweeper.ts) looks for
 * robots their workflows hold online that the projection has not heard from for the offline
 * timeout, and nudges those workflows, which check last-seen and decide. A steady robot's workflow
 * therefore has no timer firing every minute; it keeps one far-off backstop timer, in case no
 * sweeper runs. The sweeper looks only at robots silent for less than the backstop's extra time:
 * longer silences are the backstop's, and rows that no workflow will ever answer are left alone.
 */

/** How much later than the offline timeout the workflow's backstop timer fires (robot-state.ts silenceBackstop). */
export const SILENCE_BACKSTOP_EXTRA_MS = 10 * 60_000;

export type SilentRobot = { serial: string; lastSeenAt: number };

/** What the sweeper remembers of a robot it nudged: the silence it nudged about, and when. */
export type NudgeMemo = Map<string, { lastSeenAt: number; nudgedAt: number; noWorkflow: boolean }>;

/**
 * The robots to nudge now, from those a sweep found silent: each silence once, again after
 * `retryMs` if its workflow still holds the robot online, never when it has no workflow (until the
 * robot is heard from again). New silences come before retries, so that robots whose workflows do
 * not answer (a worker down, a task queue nobody polls) never keep a fresh silence waiting. Forgets
 * robots no longer found silent, so the memo stays small.
 */
export function robotsToNudge(silent: SilentRobot[], memo: NudgeMemo, now: number, retryMs: number): SilentRobot[] {
  const found = new Set(silent.map((r) => r.serial));
  for (const serial of memo.keys()) if (!found.has(serial)) memo.delete(serial);
  const fresh: SilentRobot[] = [];
  const retries: SilentRobot[] = [];
  for (const robot of silent) {
    const last = memo.get(robot.serial);
    if (last === undefined || last.lastSeenAt !== robot.lastSeenAt) fresh.push(robot);
    else if (!last.noWorkflow && now - last.nudgedAt >= retryMs) retries.push(robot);
  }
  return [...fresh, ...retries];
}
