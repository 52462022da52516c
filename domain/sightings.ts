/**
 * What the robot workflow remembers of recent heartbeats, by robot time, to place a late one among
 * them (domain/lid.ts, domain/robot-state.ts): oldest first, at most `kept`, each time once.
 */
export function keepRecent<T extends { at: number }>(seen: T[], added: T[], kept: number): T[] {
  const known = new Set(seen.map((s) => s.at));
  const fresh: T[] = [];
  for (const s of added) {
    if (known.has(s.at)) continue;
    known.add(s.at);
    fresh.push(s);
  }
  return fresh.length === 0 ? seen : [...seen, ...fresh].sort((a, b) => a.at - b.at).slice(-kept);
}

/**
 * A late heartbeat at `at` shows a value unlike the one decided since before it: the value changed
 * and changed back while newer heartbeats overtook this one. It changed back by the first later
 * sighting with the current value, the earliest the robot clock vouches for; null if none is kept.
 */
export function changedBackAt<T extends { at: number }>(seen: T[], at: number, showsCurrent: (s: T) => boolean): number | null {
  return seen.find((s) => s.at > at && showsCurrent(s))?.at ?? null;
}
