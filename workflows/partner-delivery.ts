import {
  ActivityFailure,
  allHandlersFinished,
  ApplicationFailure,
  condition,
  continueAsNew,
  defineQuery,
  defineSignal,
  patched,
  proxyActivities,
  setHandler,
  uuid4,
  workflowInfo,
} from '@temporalio/workflow';
import type { createActivities } from '../activities';
import type { DomainEvent } from '../domain/events';
import { emptySnapshot, mergeSnapshot, partnerProgress, partnerVisible, type DeliverySnapshot, type LatLng } from '../domain/partner-delivery';
import { timing } from '../temporal.config';

/**
 * One workflow per partner delivery (`partner-delivery:<provider>:<deliveryId>`), started by
 * ProviderMapping.Created, ending with the mapping. A partner that takes pushes (DoorDash) is sent
 * the delivery's status at once on every change, and at least every `pushIntervalMs` with the
 * robot's latest location. A partner that pulls (Uber) reads the status from
 * GET /v1/partners/{provider}/vehicles/{providerVehicleId}; for it the workflow records the
 * delivery's lifecycle as events (Started, StatusChanged, Ended) and pushes nothing.
 * Provider-agnostic: activities/partners says which a provider is and picks the adapter.
 */

export type PartnerDeliveryInput = {
  provider: string;
  deliveryId: string;
  serial: string;
  providerVehicleId: string;
  dropoff: LatLng | null;
  pushIntervalMs: number;
  /** How the partner learns the status; absent (push) in runs started before partners could pull. */
  receives?: 'push' | 'pull';
  /** Carried through continue-as-new. */
  state?: PartnerDeliveryState;
};

export type PartnerDeliveryState = {
  snapshot: DeliverySnapshot;
  /** Workflow time of the last push attempt, and what it told the partner (for a pull partner: the status last recorded). */
  lastPushedAt: number | null;
  pushedVisible: string | null;
  pushes: number;
  failures: number;
};

/** The delivery as the replicas have it (from POST /v1/operations-events); merged, never moved back. */
export const deliverySnapshotSignal = defineSignal<[DeliverySnapshot]>('deliverySnapshot');
export const partnerDeliveryQuery = defineQuery<PartnerDeliveryState>('partnerDelivery');

type Activities = ReturnType<typeof createActivities>;
const { pushPartnerStatus } = proxyActivities<Activities>(timing.partnerPushActivity);
const { recordFleetEvents } = proxyActivities<Activities>(timing.projectionActivity);

export async function partnerDeliveryWorkflow(input: PartnerDeliveryInput): Promise<void> {
  let state: PartnerDeliveryState = input.state ?? { snapshot: emptySnapshot, lastPushedAt: null, pushedVisible: null, pushes: 0, failures: 0 };
  setHandler(deliverySnapshotSignal, (snapshot) => void (state = { ...state, snapshot: mergeSnapshot(state.snapshot, snapshot) }));
  setHandler(partnerDeliveryQuery, () => state);
  const changed = () => partnerVisible(state.snapshot) !== state.pushedVisible;

  if (input.receives === 'pull') {
    await followForPull(input, () => state, (next) => void (state = next));
    return;
  }

  for (;;) {
    const dueIn = state.lastPushedAt === null ? 0 : state.lastPushedAt + input.pushIntervalMs - Date.now();
    if (!changed() && !state.snapshot.ended && dueIn > 0) {
      await condition(() => changed() || state.snapshot.ended, dueIn);
      continue;
    }
    if (state.snapshot.ended && !changed()) break;
    const pushed = await push(input, state);
    // A snapshot signalled while the push ran is kept; runs started before this replay as they ran.
    state = patched('snapshot-during-push') ? { ...pushed, snapshot: state.snapshot } : pushed;
    if (workflowInfo().continueAsNewSuggested && !state.snapshot.ended) {
      await condition(allHandlersFinished);
      await continueAsNew<typeof partnerDeliveryWorkflow>({ ...input, state });
    }
  }
  await condition(allHandlersFinished);
}

/** What a pull partner reads of the delivery: an event is recorded when it changes. */
const pulledStatus = (snapshot: DeliverySnapshot) => {
  const { status, failure } = partnerProgress(snapshot);
  return `${status}|${failure ?? ''}`;
};

/** A pull partner's delivery: records its lifecycle as events until the mapping ends. */
async function followForPull(input: PartnerDeliveryInput, current: () => PartnerDeliveryState, update: (s: PartnerDeliveryState) => void): Promise<void> {
  const changed = () => pulledStatus(current().snapshot) !== current().pushedVisible;
  for (;;) {
    await condition(() => changed() || current().snapshot.ended);
    const { snapshot, pushedVisible } = current();
    const events: DomainEvent[] = [];
    if (changed()) events.push(lifecycleEvent(pushedVisible === null ? 'PartnerDelivery.Started' : 'PartnerDelivery.StatusChanged', input, snapshot));
    if (snapshot.ended) events.push(lifecycleEvent('PartnerDelivery.Ended', input, snapshot));
    update({ ...current(), pushedVisible: pulledStatus(snapshot) });
    await recordFleetEvents(events);
    if (snapshot.ended) break;
    if (workflowInfo().continueAsNewSuggested) {
      await condition(allHandlersFinished);
      await continueAsNew<typeof partnerDeliveryWorkflow>({ ...input, state: current() });
    }
  }
  await condition(allHandlersFinished);
}

function lifecycleEvent(type: string, input: PartnerDeliveryInput, snapshot: DeliverySnapshot): DomainEvent {
  const { status, failure } = partnerProgress(snapshot);
  return {
    id: uuid4(),
    type,
    serial: input.serial,
    occurredAt: new Date(Date.now()).toISOString(),
    data: {
      provider: input.provider,
      deliveryId: input.deliveryId,
      providerVehicleId: input.providerVehicleId,
      deliveryStatus: status,
      deliveryFailure: failure,
      stage: snapshot.stage,
      outcome: snapshot.outcome,
    },
  };
}

/** One push; whatever its outcome, the next waits for a change or the interval, so a rejection never spins. */
async function push(input: PartnerDeliveryInput, state: PartnerDeliveryState): Promise<PartnerDeliveryState> {
  const snapshot = state.snapshot;
  const attempted = { ...state, lastPushedAt: Date.now(), pushedVisible: partnerVisible(snapshot) };
  try {
    const { pushed } = await pushPartnerStatus({
      provider: input.provider,
      deliveryId: input.deliveryId,
      serial: input.serial,
      providerVehicleId: input.providerVehicleId,
      dropoff: input.dropoff,
      snapshot,
      pushId: uuid4(),
    });
    return { ...attempted, pushes: state.pushes + (pushed ? 1 : 0) };
  } catch (error) {
    if (!(error instanceof ActivityFailure)) throw error;
    await recordFleetEvents([pushFailure(input, snapshot, error)]);
    return { ...attempted, failures: state.failures + 1 };
  }
}

/** A 4xx the partner will not take again is PushRejected; anything else that outlived its retries, PushFailed. */
function pushFailure(input: PartnerDeliveryInput, snapshot: DeliverySnapshot, error: ActivityFailure): DomainEvent {
  const cause = error.cause instanceof ApplicationFailure ? error.cause : null;
  const rejected = cause?.type === 'PartnerRejected';
  const details = (cause?.details?.[0] ?? {}) as { httpStatus?: number };
  return {
    id: uuid4(),
    type: rejected ? 'PartnerDelivery.PushRejected' : 'PartnerDelivery.PushFailed',
    serial: input.serial,
    occurredAt: new Date(Date.now()).toISOString(),
    data: {
      provider: input.provider,
      deliveryId: input.deliveryId,
      providerVehicleId: input.providerVehicleId,
      stage: snapshot.stage,
      outcome: snapshot.outcome,
      httpStatus: details.httpStatus ?? null,
      message: (error.cause ?? error).message,
    },
  };
}
