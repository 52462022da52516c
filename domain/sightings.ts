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
