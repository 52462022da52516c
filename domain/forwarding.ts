import type { Heartbeat } from './heartbeat';

/**
 * Which heartbeats the ingest worker forwards to the robot workflow. Every heartbeat reaches the
 * projection; the workflow gets a heartbeat at once when something it decides on changed (lid,
 * components, charge, network, robot events) and otherwise at most once per `intervalMs`, which
 * also tells it the robot is still there. So Temporal work per robot stays flat at 1 Hz.
 */
export type ForwardMemo = { fingerprint: string; forwardedAt: number; newestTimestamp: number };

export function significantFingerprint(hb: Heartbeat): string {
  return JSON.stringify([
    hb.lidOpen ?? null,
    Object.entries(hb.components).sort(([a], [b]) => a.localeCompare(b)),
    hb.batteries.map((b) => [b.batteryIndex, b.chargePercent, b.isCharging ?? null]),
    hb.network?.type ?? null,
  ]);
}

export function decideForward(
  memo: ForwardMemo | undefined,
  hb: Heartbeat,
  intervalMs: number,
): { forward: boolean; memo: ForwardMemo } {
  const fingerprint = significantFingerprint(hb);
  // An older heartbeat changes no state, but its robot events (keypad PINs) happened once and must
  // reach the workflow, which takes each once by its timestamp. An exact repeat of the newest does not.
  if (memo && hb.timestamp <= memo.newestTimestamp) return { forward: hb.events.length > 0 && hb.timestamp < memo.newestTimestamp, memo };
  const forward =
    memo === undefined ||
    hb.events.length > 0 ||
    fingerprint !== memo.fingerprint ||
    hb.receivedAt - memo.forwardedAt >= intervalMs;
  const next = forward
    ? { fingerprint, forwardedAt: hb.receivedAt, newestTimestamp: hb.timestamp }
    : { ...memo!, newestTimestamp: hb.timestamp };
  return { forward, memo: next };
}
