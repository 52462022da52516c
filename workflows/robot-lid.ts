import { getExternalWorkflowHandle, ParentClosePolicy, proxyActivities, startChild, uuid4 } from '@temporalio/workflow';
import type { createActivities } from '../activities';
import { cycleClosed, cycleStarted, unlockSince, type LidSettings, type LidTracker, type LidWork } from '../domain/lid';
import { searchAttributes, timing, workflowIds } from '../temporal.config';
import { commandWorkflow } from './command';
import { lidCycleWorkflow, lidClosedSignal } from './lid-cycle';

/**
 * The robot workflow's lid part: what domain/lid.ts `lidWorkFor` found in its heartbeats, done in
 * order. A PIN entry is judged by an activity (a right one issues UNLOCK_LID as a child command
 * workflow); an opening starts a lid-cycle workflow; a closing signals it. Children are abandoned
 * on parent close, so they outlive the robot workflow's continue-as-new.
 */

const { judgePinEntry } = proxyActivities<ReturnType<typeof createActivities>>(timing.projectionActivity);

export async function runLidWork(serial: string, settings: LidSettings, tracker: LidTracker, work: LidWork[]): Promise<LidTracker> {
  for (const item of work) {
    if (item.kind === 'pin') await pinEntered(serial, settings, item);
    else if (item.kind === 'open') tracker = await lidOpened(serial, settings, tracker, item);
    else tracker = await lidClosed(serial, tracker, item);
  }
  return tracker;
}

const about = (serial: string) => ({
  parentClosePolicy: ParentClosePolicy.ABANDON,
  typedSearchAttributes: [{ key: searchAttributes.robotSerial, value: serial }],
});

async function pinEntered(serial: string, settings: LidSettings, entry: Extract<LidWork, { kind: 'pin' }>): Promise<void> {
  const commandId = uuid4();
  const result = await judgePinEntry({
    entryId: uuid4(),
    serial,
    source: 'KEYPAD',
    pinHash: entry.pinHash,
    robotTimestamp: entry.timestamp,
    at: entry.receivedAt,
    policy: settings.lockout,
    unlock: { commandId, timeoutMs: settings.commandTimeoutMs },
    eventIds: [uuid4(), uuid4()],
  });
  if (result.duplicate || !result.unlockCommand) return;
  await startChild(commandWorkflow, {
    workflowId: workflowIds.command(serial, result.unlockCommand.commandId),
    args: [{ command: result.unlockCommand }],
    ...about(serial),
  });
}

async function lidOpened(serial: string, settings: LidSettings, tracker: LidTracker, open: Extract<LidWork, { kind: 'open' }>): Promise<LidTracker> {
  // A close we never saw (the robot was away): the old cycle ends where the new one begins.
  tracker = await lidClosed(serial, tracker, { kind: 'close', closedAt: open.openedAt, receivedAt: open.receivedAt });
  const cycleId = uuid4();
  await startChild(lidCycleWorkflow, {
    workflowId: workflowIds.lidCycle(serial, cycleId),
    args: [{ serial, cycleId, openedAt: open.openedAt, receivedAt: open.receivedAt, unlockSince: unlockSince(tracker, open.receivedAt, settings), timeoutMs: settings.openTimeoutMs }],
    ...about(serial),
  });
  return cycleStarted(tracker, { cycleId, openedAt: open.openedAt, receivedAt: open.receivedAt });
}

async function lidClosed(serial: string, tracker: LidTracker, close: Extract<LidWork, { kind: 'close' }>): Promise<LidTracker> {
  if (!tracker.openCycle) return tracker;
  try {
    await getExternalWorkflowHandle(workflowIds.lidCycle(serial, tracker.openCycle.cycleId)).signal(lidClosedSignal, { closedAt: close.closedAt });
  } catch {
    // The cycle already ended (it found the close in the projection); nothing is waiting for this.
  }
  return cycleClosed(tracker);
}
