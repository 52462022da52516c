import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from '@temporalio/worker';

/**
 * Running robot workflows must replay on the current code: each workflow change is behind
 * `patched()`. The fixture is a real history (`temporal workflow show --output json`) recorded
 * before the silence sweeper, from a robot that came online, passed two offline deadlines while
 * still heard from, raised a fault, went offline, came back and continued as new.
 */
test('a robot history from the deadline-timer version replays on the current workflow code', async () => {
  const history = JSON.parse(readFileSync(join(__dirname, '..', 'fixtures', 'robot-history-deadline-timer.json'), 'utf8'));
  await Worker.runReplayHistory({ workflowBundle: { codePath: process.env.TEST_WORKFLOW_BUNDLE! } }, history);
}, 60_000);
