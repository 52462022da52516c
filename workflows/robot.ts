import {
  allHandlersFinished,
  condition,
  continueAsNew,
  defineQuery,
  defineSignal,
  proxyActivities,
  setHandler,
  upsertSearchAttributes,
  uuid4,
  workflowInfo,
} from '@temporalio/workflow';
import type { createActivities } from '../activities';
import type { Heartbeat } from '../domain/heartbeat';
import type { DomainEvent, EventDraft } from '../domain/events';
import { applyHeartbeat, checkSilence, initialRobotState, offlineDeadline, type RobotState } from '../domain/robot-state';
import { searchAttributes, timing } from '../temporal.config';

/**
 * One long-running workflow per robot (`robot:<serial>`): keeps the device shadow, decides
 * online/offline and component health, and records those decisions. Telemetry reaches the
 * projection without passing through here (see ingest/), so this only wakes on changes.
 */

export type RobotWorkflowInput = {
  serial: string;
  offlineAfterMs: number;
  /** Carried through continue-as-new. */
  state?: RobotState;
  pending?: Heartbeat[];
};

export const heartbeatsSignal = defineSignal<[{ heartbeats: Heartbeat[] }]>('heartbeats');
export const robotStateQuery = defineQuery<RobotState>('robotState');

const { recordRobotChanges, readLastSeen } = proxyActivities<ReturnType<typeof createActivities>>(timing.projectionActivity);

export async function robotWorkflow(input: RobotWorkflowInput): Promise<void> {
  let state = input.state ?? initialRobotState(input.serial, Date.now());
  const inbox: Heartbeat[] = [...(input.pending ?? [])];
  setHandler(heartbeatsSignal, ({ heartbeats }) => void inbox.push(...heartbeats));
  setHandler(robotStateQuery, () => state);

  while (!workflowInfo().continueAsNewSuggested) {
    const deadline = offlineDeadline(state, input.offlineAfterMs);
    if (deadline === null) await condition(() => inbox.length > 0);
    else await condition(() => inbox.length > 0, Math.max(deadline - Date.now(), 1));

    const before = state;
    const events: EventDraft[] = [];
    if (inbox.length > 0) {
      for (const heartbeat of inbox.splice(0)) {
        const t = applyHeartbeat(state, heartbeat);
        state = t.state;
        events.push(...t.events);
      }
    } else {
      const lastSeenAt = await readLastSeen(state.serial);
      const t = checkSilence(state, lastSeenAt, Date.now(), input.offlineAfterMs);
      state = t.state;
      events.push(...t.events);
    }
    if (events.length > 0) await record(before, state, events);
  }

  await condition(allHandlersFinished);
  await continueAsNew<typeof robotWorkflow>({ ...input, state, pending: inbox });
}

async function record(before: RobotState, after: RobotState, drafts: EventDraft[]): Promise<void> {
  const events: DomainEvent[] = drafts.map((d) => ({ ...d, id: uuid4() }));
  await recordRobotChanges({
    serial: after.serial,
    online: after.online,
    onlineChangedAt: after.onlineChangedAt,
    events,
  });
  if (before.online !== after.online || before.fleetStatus !== after.fleetStatus) {
    upsertSearchAttributes([
      { key: searchAttributes.online, value: after.online },
      { key: searchAttributes.fleetStatus, value: after.fleetStatus },
    ]);
  }
}
