/**
 * The soak's fault schedule (test/faults/soak.ts), drawn from a seed so that a run can be repeated:
 * when each fault hits, which piece or server it hits, and how long it stays down. Faults come
 * 15 to 45 s apart, now and then two or three at once; a target is never hit again before it has
 * been back for its settling time.
 */

export type FaultKind = 'kill' | 'pause' | 'stop-temporal' | 'kill-temporal' | 'stop-postgres' | 'stop-broker' | 'stop-rabbitmq';

export type FaultType = {
  kind: FaultKind;
  /** Pieces (`worker-2`) or servers (`temporal`) it may hit. */
  targets: string[];
  /** Down for a time drawn between these, in ms. */
  downMs: [number, number];
  /** How often it is drawn, relative to the other types (shared by its targets). */
  weight: number;
  /** After it ends, its target is left alone this long (a restarted piece's cold start). */
  settleMs: number;
};

export type PlannedFault = { atMs: number; kind: FaultKind; target: string; downMs: number; batch: number };

export type Targets = {
  /** Pieces to kill with SIGKILL and start again. */
  pieces: string[];
  /** Pieces to hold with SIGSTOP and release with SIGCONT. */
  pausable: string[];
  /** Whether the broker can be restarted without losing messages (Mosquitto's persistence). */
  broker: boolean;
  rabbitmq: boolean;
};

export function faultTypes(t: Targets): FaultType[] {
  const types: FaultType[] = [
    { kind: 'kill', targets: t.pieces, downMs: [1000, 8000], weight: 4, settleMs: 30_000 },
    { kind: 'pause', targets: t.pausable, downMs: [3000, 15_000], weight: 1, settleMs: 10_000 },
    { kind: 'stop-temporal', targets: ['temporal'], downMs: [5000, 30_000], weight: 1, settleMs: 60_000 },
    { kind: 'kill-temporal', targets: ['temporal'], downMs: [5000, 20_000], weight: 1, settleMs: 60_000 },
    { kind: 'stop-postgres', targets: ['postgres'], downMs: [5000, 30_000], weight: 1, settleMs: 60_000 },
    { kind: 'stop-broker', targets: t.broker ? ['broker'] : [], downMs: [2000, 15_000], weight: 1, settleMs: 30_000 },
    { kind: 'stop-rabbitmq', targets: t.rabbitmq ? ['rabbitmq'] : [], downMs: [5000, 30_000], weight: 1, settleMs: 30_000 },
  ];
  return types.filter((type) => type.targets.length > 0);
}

/** mulberry32: a small, fast PRNG whose whole state is one 32-bit number. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function planFaults(opts: { seed: number; durationMs: number; types: FaultType[] }): PlannedFault[] {
  const random = seededRandom(opts.seed);
  const between = ([min, max]: [number, number]) => Math.round(min + random() * (max - min));
  const busyUntil = new Map<string, number>();
  const plan: PlannedFault[] = [];
  let batch = 0;
  for (let at = between([10_000, 20_000]); at < opts.durationMs; at += between([15_000, 45_000])) {
    const r = random();
    const count = r < 0.14 ? 2 : r < 0.2 ? 3 : 1;
    batch += 1;
    for (let i = 0; i < count; i++) {
      const choices = opts.types.flatMap((type) => type.targets.filter((target) => (busyUntil.get(target) ?? 0) <= at).map((target) => ({ type, target, weight: type.weight / type.targets.length })));
      if (choices.length === 0) break;
      let pick = random() * choices.reduce((sum, c) => sum + c.weight, 0);
      const choice = choices.find((c) => (pick -= c.weight) < 0) ?? choices[choices.length - 1];
      const downMs = between(choice.type.downMs);
      plan.push({ atMs: at, kind: choice.type.kind, target: choice.target, downMs, batch });
      busyUntil.set(choice.target, at + downMs + choice.type.settleMs);
    }
  }
  return plan;
}
