import type { Heartbeat } from './heartbeat';

/**
 * Which heartbeats the ingest worker forwards to the robot workflow. Every heartbeat reaches the
 * projection; the workflow gets a heartbeat at once when something it decides on changed (lid,
 * component codes, robot events), when the robot comes back from a silence it may have been
 * marked offline for, and otherwise at most once per `intervalMs`, which keeps its shadow from
 * going stale. It does not need heartbeats to know a robot is alive: the ingest's silence sweeper
 * tells it when the projection stops hearing from the robot (domain/silence.ts). So Temporal work
 * per robot stays flat at 1 Hz. In the memo, `fingerprint` is the last forwarded heartbeat's; the
 * rest is the newest seen.
 */
export type ForwardMemo = { fingerprint: string; forwardedAt: number; newestTimestamp: number; lastReceivedAt: number };

export type ForwardRule = {
  /** The longest gap between two forwarded heartbeats of a robot that keeps sending. */
  intervalMs: number;
  /** A robot silent this long may be offline in its workflow: its next heartbeat is forwarded. */
  silenceMs: number;
};

export function significantFingerprint(hb: Heartbeat): string {
  return JSON.stringify([hb.lidOpen ?? null, Object.entries(hb.components).sort(([a], [b]) => a.localeCompare(b))]);
}

export function decideForward(memo: ForwardMemo | undefined, hb: Heartbeat, rule: ForwardRule): { forward: boolean; memo: ForwardMemo } {
  const fingerprint = significantFingerprint(hb);
  // An older heartbeat changes no state, but its robot events (keypad PINs) happened once and must
  // reach the workflow, which takes each once by its timestamp; and a lid or component code unlike
  // the last forwarded may be a change newer heartbeats overtook, which the workflow places by its
  // time (domain/lid.ts, domain/robot-state.ts). A repeat of the newest does not.
  if (memo && hb.timestamp <= memo.newestTimestamp) {
    const older = hb.timestamp < memo.newestTimestamp;
    if (older && fingerprint !== memo.fingerprint) return { forward: true, memo: { ...memo, fingerprint } };
    return { forward: older && hb.events.length > 0, memo };
  }
  const forward =
    memo === undefined ||
    hb.events.length > 0 ||
    fingerprint !== memo.fingerprint ||
    hb.receivedAt - memo.lastReceivedAt >= rule.silenceMs ||
    hb.receivedAt - memo.forwardedAt >= rule.intervalMs;
  const seen = { newestTimestamp: hb.timestamp, lastReceivedAt: hb.receivedAt };
  return { forward, memo: forward ? { fingerprint, forwardedAt: hb.receivedAt, ...seen } : { ...memo!, ...seen } };
}
