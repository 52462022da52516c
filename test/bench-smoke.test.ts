import { runBenchmark, smokeOptions, type ModeRun } from '../bench/run';

/**
 * `npm run bench -- --smoke` in miniature: the benchmark itself must work (fresh stacks, load
 * generator, every measurement). It asserts no loss and no errors, never speed: performance is
 * what `npm run bench` reports, on a machine whose other load these tests cannot know.
 */
test('the benchmark runs the designed mode end to end and loses no heartbeat', async () => {
  // The designed mode only: each mode brings up a stack of its own, and the suite's time counts.
  const report = await runBenchmark({ ...smokeOptions, modes: ['designed'], robots: 150, durationSeconds: 8, log: () => undefined, progress: () => undefined });
  const modes = report.modes as Record<string, ModeRun>;
  expect(Object.keys(modes)).toEqual(['designed']);
  for (const run of Object.values(modes)) {
    const errors = run.problems.filter((p) => !/freshness|behind at the end|fell behind/.test(p));
    expect({ mode: run.mode, errors }).toEqual({ mode: run.mode, errors: [] });
    expect(run.published).toBeGreaterThan(150 * 8 * 0.9);
    expect(run.accepted).toBeGreaterThanOrEqual(run.published);
    expect(run.lost).toBe(0);
    expect(run.robotsBehind).toBe(0);
    expect(run.freshnessMs.heartbeats).toBeGreaterThan(0);
    expect(run.fleetList.requests).toBeGreaterThan(0);
    expect(run.fleetList.server?.requests).toBeGreaterThan(0);
    // Timed in the list client's own process, which reports its event loop over the hold too.
    expect(run.fleetList.slowest.length).toBe(Math.min(10, run.fleetList.requests));
    expect(run.fleetList.clientLoopDelayMs?.p50).toBeGreaterThan(0);
    expect(run.processes['ingest worker'].peakMemoryMb).toBeGreaterThan(0);
  }
  // Histories were read; a steady robot may well have no workflow task in an 8 s hold (docs/architecture.md, "What reaches Temporal").
  expect(modes.designed.temporalPerRobotPerMinute?.sampledRobots).toBeGreaterThan(0);
  expect(report).toMatchObject({ robots: 150, rate: 1, durationSeconds: 8, lost: 0 });
}, 240_000);
