import { offlineProblems } from '../../bench/run';

/** The benchmark's verdict on the offline target: every silent robot reported, within OFFLINE_AFTER_SECONDS + 5 s. */
const run = (over: Partial<NonNullable<Parameters<typeof offlineProblems>[0]>>) => ({ robots: 20, missed: 0, p50: 61_000, max: 62_000, offlineAfterMs: 60_000, ...over });

test('every silent robot reported within the limit passes', () => {
  expect(offlineProblems(run({}))).toEqual([]);
  expect(offlineProblems(run({ max: 65_000 }))).toEqual([]);
  expect(offlineProblems(null)).toEqual([]);
});

test('a robot reported after the limit fails the run, as does one never reported', () => {
  expect(offlineProblems(run({ max: 66_549 }))).toEqual(['a silent robot reported offline after 66549 ms, over the limit of 65000 ms']);
  expect(offlineProblems(run({ missed: 2 }))).toEqual(['2 silent robots never reported offline']);
});

test('a run where no silent robot was reported at all says so once, with no figure to judge', () => {
  expect(offlineProblems(run({ missed: 20, max: 0 }))).toEqual(['20 silent robots never reported offline']);
});
