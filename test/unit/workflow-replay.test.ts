import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { arrayFromPayloads, defaultPayloadConverter } from '@temporalio/common';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils';
import { bundleWorkflowCode, Worker, type InjectedSinks } from '@temporalio/worker';
import type { ActivityInputSinks } from '../support/activity-inputs';

/**
 * Running workflows must replay on the current code: each change that alters the commands a
 * workflow issues is behind `patched()`. The fixtures are real histories
 * (`temporal workflow show --output json`) recorded with earlier versions:
 * - robot-deadline-timer: a robot that came online, passed two one-minute-style offline deadlines
 *   while still heard from, raised a fault, went offline, came back and continued as new (before
 *   the silence sweeper);
 * - robot-last-seen-activity: a robot heard from, a fault, offline after a silence and back,
 *   recorded before `patched('last-seen-local-activity')`: its deadline timer read last-seen with
 *   a scheduled activity;
 * - robot-pin-entry, command-unlock, lid-cycle: a delivery (PIN set, right PIN on the keypad,
 *   UNLOCK_LID executed, lid opened and closed) while projection writes were scheduled activities;
 * - robot-late-heartbeats: a heartbeat with the lid open and a camera OK arriving after a newer
 *   one with the lid closed and the camera timed out, recorded before `patched('late-heartbeats')`,
 *   when the workflow ignored it (now it is a lid cycle and a camera recovery and fault);
 * - partner-delivery-snapshot-during-push: a stage change signalled while a push was being retried
 *   after 503s, recorded before `patched('snapshot-during-push')`, when the push's outcome replaced
 *   the state and the change was lost until the interval (now it is pushed at once);
 * - partner-delivery-doordash-pushes: a DoorDash delivery pushed on each stage change and on the
 *   interval until delivered and unmapped, recorded before snapshots carried Deliveries' status
 *   and before partners that pull (Uber) took a branch of their own (no patch: no run of a pull
 *   partner existed before it, and a push partner's commands are unchanged);
 * - deployment-canary-soak-succeeded, deployment-soak-fault-failed, deployment-cancelled: rollouts
 *   (canary, soak, the rest; a canary faulting in its soak; cancelled by signal while polling),
 *   recorded before the rollout's stages were named functions;
 * - robot-continued-as-new: a run started by continue-as-new with its carried state in separate
 *   input fields (state, pending, lidTracker, ...), recorded before they were one object.
 */
const dir = join(__dirname, '..', 'fixtures', 'histories');

test.each(readdirSync(dir).filter((f) => f.endsWith('.json')))('%s replays on the current workflow code', async (file) => {
  const history = JSON.parse(readFileSync(join(dir, file), 'utf8'));
  await Worker.runReplayHistory({ workflowBundle: { codePath: process.env.TEST_WORKFLOW_BUNDLE! } }, history);
}, 60_000);

/**
 * Replay checks the commands, not what they carry: a workflow that now sends an activity other
 * arguments (a renamed event, say) replays all the same. So the rollouts' histories also replay
 * with every scheduled activity's arguments compared to those recorded: a change of what a
 * running rollout sends must be behind `patched()` too (`rollout-event-names`: the rollouts
 * recorded here, started before the rename, keep their Deployment.* event names).
 */
describe('recorded rollouts send what they recorded', () => {
  let code: string;
  const quiet = { trace: () => undefined, debug: () => undefined, info: () => undefined, warn: () => undefined, error: console.error, log: () => undefined };

  beforeAll(async () => {
    ({ code } = await bundleWorkflowCode({
      workflowsPath: require.resolve('../../workflows'),
      workflowInterceptorModules: [require.resolve('../support/activity-inputs')],
      logger: quiet,
    }));
  }, 120_000);

  test.each(readdirSync(dir).filter((f) => f.startsWith('deployment-') && f.endsWith('.json')))('%s: each activity has the arguments it was recorded with', async (file) => {
    const json = JSON.parse(readFileSync(join(dir, file), 'utf8'));
    const recorded = (historyFromJSON(json).events ?? []).flatMap((e) => {
      const scheduled = e.activityTaskScheduledEventAttributes;
      return scheduled ? [{ activity: scheduled.activityType?.name, args: arrayFromPayloads(defaultPayloadConverter, scheduled.input?.payloads) }] : [];
    });
    const replayed: { activity: string; args: unknown[] }[] = [];
    const sinks: InjectedSinks<ActivityInputSinks> = {
      activityInputs: { scheduled: { fn: (_info, activity, args) => void replayed.push({ activity, args }), callDuringReplay: true } },
    };
    await Worker.runReplayHistory({ workflowBundle: { code }, sinks }, json);
    expect(recorded.length).toBeGreaterThan(0);
    expect(replayed).toEqual(recorded);
  }, 60_000);
});
