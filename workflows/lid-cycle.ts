import { condition, defineQuery, defineSignal, proxyActivities, setHandler, uuid4 } from '@temporalio/workflow';
import type { createActivities } from '../activities';
import { cycleEnd, type LidCycleStatus } from '../domain/lid';
import { timing } from '../temporal.config';

/**
 * One lid opening (`lid-cycle:<serial>:<cycleId>`), started by the robot workflow when the lid
 * opens: INIT, then COMPLETE when the lid closes within the timeout, else TIMEOUT (and the close
 * is still recorded when it comes). Its events are recorded exactly once, with ids chosen here.
 */

export type LidCycleWorkflowInput = {
  serial: string;
  cycleId: string;
  /** Robot clock of the first heartbeat with the lid open. */
  openedAt: number;
  /** Server clock of that heartbeat: the timeout runs from here. */
  receivedAt: number;
  unlockSince: number;
  timeoutMs: number;
};

export type LidClosed = { closedAt: number };

export const lidClosedSignal = defineSignal<[LidClosed]>('lidClosed');
export const lidCycleQuery = defineQuery<{ status: LidCycleStatus; closedAt: number | null }>('lidCycle');

const { openLidCycle, finishLidCycle, recordLidClosed, readLid } = proxyActivities<ReturnType<typeof createActivities>>(timing.projectionActivity);

export async function lidCycleWorkflow(input: LidCycleWorkflowInput): Promise<LidCycleStatus> {
  const cycle: { status: LidCycleStatus; closedAt: number | null } = { status: 'INIT', closedAt: null };
  setHandler(lidClosedSignal, (closed) => {
    cycle.closedAt ??= closed.closedAt;
  });
  setHandler(lidCycleQuery, () => ({ ...cycle }));

  await openLidCycle({ ...input, eventId: uuid4() });
  const deadline = input.receivedAt + input.timeoutMs;
  await condition(() => cycle.closedAt !== null, Math.max(deadline - Date.now(), 1));
  // The close may be on its way (a worker was down, a signal is queued): the projection knows.
  if (cycle.closedAt === null) {
    const lid = await readLid(input.serial);
    if (lid && !lid.isOpen && lid.changedAt !== null && lid.changedAt > input.openedAt) cycle.closedAt = lid.changedAt;
  }
  const endedAt = cycle.closedAt;
  cycle.status = endedAt === null ? 'TIMEOUT' : cycleEnd(input.openedAt, endedAt, input.timeoutMs);
  await finishLidCycle({ cycleId: input.cycleId, status: cycle.status, endedAt, timeoutMs: input.timeoutMs, eventId: uuid4() });
  if (endedAt === null) {
    await condition(() => cycle.closedAt !== null);
    await recordLidClosed({ cycleId: input.cycleId, endedAt: cycle.closedAt! });
  }
  return cycle.status;
}
