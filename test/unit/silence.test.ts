import { robotsToNudge, type NudgeMemo } from '../../domain/silence';

const t0 = Date.parse('2024-01-10T12:00:00Z');
const retryMs = 60_000;

test('a silence is nudged once, again after the retry time, and anew when the robot was heard from since', () => {
  const memo: NudgeMemo = new Map();
  const robot = { serial: 'A1', lastSeenAt: t0 };
  expect(robotsToNudge([robot], memo, t0 + 61_000, retryMs)).toEqual([robot]);
  memo.set('A1', { lastSeenAt: t0, nudgedAt: t0 + 61_000, noWorkflow: false });
  expect(robotsToNudge([robot], memo, t0 + 63_000, retryMs)).toEqual([]);
  expect(robotsToNudge([robot], memo, t0 + 121_000, retryMs)).toEqual([robot]);
  const heardAgain = { serial: 'A1', lastSeenAt: t0 + 5_000 };
  expect(robotsToNudge([heardAgain], memo, t0 + 66_000, retryMs)).toEqual([heardAgain]);
});

test('a robot without a workflow is not nudged again until it is heard from', () => {
  const memo: NudgeMemo = new Map([['B2', { lastSeenAt: t0, nudgedAt: t0 + 61_000, noWorkflow: true }]]);
  expect(robotsToNudge([{ serial: 'B2', lastSeenAt: t0 }], memo, t0 + 10 * retryMs, retryMs)).toEqual([]);
  expect(robotsToNudge([{ serial: 'B2', lastSeenAt: t0 + 1 }], memo, t0 + 10 * retryMs, retryMs)).toHaveLength(1);
});

test('robots no longer found silent are forgotten', () => {
  const memo: NudgeMemo = new Map([
    ['A1', { lastSeenAt: t0, nudgedAt: t0, noWorkflow: false }],
    ['B2', { lastSeenAt: t0, nudgedAt: t0, noWorkflow: true }],
  ]);
  robotsToNudge([{ serial: 'B2', lastSeenAt: t0 }], memo, t0 + 1000, retryMs);
  expect([...memo.keys()]).toEqual(['B2']);
});

test('new silences are nudged before retries, so robots whose workflows never answer cannot keep them waiting', () => {
  const memo: NudgeMemo = new Map();
  const stuck = Array.from({ length: 3 }, (_, i) => ({ serial: `S${i}`, lastSeenAt: t0 + i }));
  for (const robot of stuck) memo.set(robot.serial, { lastSeenAt: robot.lastSeenAt, nudgedAt: t0, noWorkflow: false });
  const fresh = { serial: 'NEW', lastSeenAt: t0 + 50_000 };
  expect(robotsToNudge([...stuck, fresh], memo, t0 + 2 * retryMs, retryMs).map((r) => r.serial)).toEqual(['NEW', 'S0', 'S1', 'S2']);
});
