import { faultTypes, planFaults } from '../faults/soak-plan';

const types = faultTypes({ pieces: ['worker', 'worker-2', 'ingest', 'api', 'publisher'], pausable: ['ingest'], broker: true, rabbitmq: true });
const halfAnHour = 30 * 60_000;

test('a seed gives the same fault schedule every time, another seed another one', () => {
  const plan = planFaults({ seed: 42, durationMs: halfAnHour, types });
  expect(planFaults({ seed: 42, durationMs: halfAnHour, types })).toEqual(plan);
  expect(planFaults({ seed: 43, durationMs: halfAnHour, types })).not.toEqual(plan);
});

test('half an hour draws every kind of fault, several at once now and then, and never hits a target that has not settled', () => {
  for (const seed of [1, 2, 3, 4, 5]) {
    const plan = planFaults({ seed, durationMs: halfAnHour, types });
    expect(new Set(plan.map((f) => f.kind))).toEqual(new Set(types.map((t) => t.kind)));
    expect(plan.some((f) => plan.filter((o) => o.batch === f.batch).length > 1)).toBe(true);
    for (const f of plan) {
      const type = types.find((t) => t.kind === f.kind)!;
      expect(f.atMs).toBeLessThan(halfAnHour);
      expect(f.downMs).toBeGreaterThanOrEqual(type.downMs[0]);
      expect(f.downMs).toBeLessThanOrEqual(type.downMs[1]);
      const next = plan.find((o) => o.target === f.target && o.atMs > f.atMs);
      if (next) expect(next.atMs).toBeGreaterThanOrEqual(f.atMs + f.downMs + type.settleMs);
      expect(plan.filter((o) => o.batch === f.batch && o.target === f.target)).toHaveLength(1);
    }
  }
});

test('faults whose target the stack lacks are never drawn', () => {
  const plan = planFaults({ seed: 7, durationMs: halfAnHour, types: faultTypes({ pieces: ['worker', 'ingest', 'api'], pausable: ['ingest'], broker: false, rabbitmq: false }) });
  expect(plan.some((f) => f.kind === 'stop-broker' || f.kind === 'stop-rabbitmq' || f.target === 'publisher')).toBe(false);
});
