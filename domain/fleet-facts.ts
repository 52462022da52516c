import type { BusinessFacts } from './fleet-status';
import {
  openFoTaskStatuses,
  terminalDeliveryStatuses,
  terminalTripStages,
  type DeliveryStatus,
  type FoTaskStatus,
  type FoTaskType,
  type OperationsEventOf,
  type OperationsEventType,
  type TripStage,
  type TripType,
} from './operations-events';

/**
 * The fleet view's replicas of business entities, and how a fact changes them. Each entity keeps
 * `occurredAt`, the time of the newest fact applied to it: an older fact about the same entity
 * changes nothing, whatever order facts arrive in. Attributes that never change (a trip's type,
 * a task's creation) are filled in by their fact whenever it arrives. Ending a trip, deployment or
 * provider mapping is final. Times are epoch milliseconds.
 */

export type TripReplica = {
  tripId: string;
  serial: string;
  tripType: TripType | null;
  stage: TripStage;
  deliveryId: string | null;
  outcome: string | null;
  startedAt: number | null;
  endedAt: number | null;
  occurredAt: number;
};

export type FoTaskReplica = {
  taskId: string;
  serial: string;
  taskType: FoTaskType | null;
  status: FoTaskStatus;
  createdAt: number | null;
  occurredAt: number;
};

export type DeploymentReplica = {
  deploymentId: string;
  serial: string;
  locationId: string | null;
  needsPickup: boolean;
  startedAt: number | null;
  endedAt: number | null;
  occurredAt: number;
};

export type ProviderMappingReplica = {
  provider: string;
  deliveryId: string;
  serial: string;
  providerVehicleId: string | null;
  dropoff: { lat: number; lng: number } | null;
  createdAt: number | null;
  endedAt: number | null;
  occurredAt: number;
};

export type DeliveryReplica = {
  deliveryId: string;
  serial: string;
  status: DeliveryStatus;
  merchantId: string | null;
  customerId: string | null;
  demandId: string | null;
  /** When a terminal status (DELIVERED, CANCELLED, FAILED) was reached. */
  endedAt: number | null;
  occurredAt: number;
};

/** The replica after the fact, or null when the fact changes nothing (it is stale). */
type Reduce<R, T extends OperationsEventType> = (current: R | null, event: OperationsEventOf<T>) => R | null;

const ms = (e: { occurredAt: string; type: string }) => Date.parse(e.occurredAt);
const changed = <R extends object>(current: R | null, next: R): R | null =>
  current !== null && (Object.keys(next) as (keyof R)[]).every((k) => Object.is(current[k], next[k])) ? null : next;
const newer = (current: { occurredAt: number }, t: number) => t >= current.occurredAt;

export const applyTripCreated: Reduce<TripReplica, 'Trip.Created'> = (current, e) => {
  const t = ms(e);
  const base = current ?? { tripId: e.data.tripId, serial: e.serial, stage: 'SCHEDULED', outcome: null, endedAt: null, occurredAt: t };
  return changed(current, {
    ...base,
    serial: current === null || newer(current, t) ? e.serial : current.serial,
    tripType: e.data.tripType,
    deliveryId: e.data.deliveryId ?? current?.deliveryId ?? null,
    startedAt: t,
  });
};

export const applyTripStageChanged: Reduce<TripReplica, 'Trip.StageChanged'> = (current, e) => {
  const t = ms(e);
  if (current !== null && (current.endedAt !== null || !newer(current, t))) return null;
  const ends = terminalTripStages.includes(e.data.stage);
  return changed(current, {
    tripId: e.data.tripId,
    tripType: null,
    deliveryId: null,
    outcome: null,
    startedAt: null,
    ...current,
    serial: e.serial,
    stage: e.data.stage,
    endedAt: ends ? t : null,
    occurredAt: t,
  });
};

/** Completion is final whatever its time: a stage reported after it cannot reopen the trip. */
export const applyTripCompleted: Reduce<TripReplica, 'Trip.Completed'> = (current, e) => {
  const t = ms(e);
  if (current !== null && current.outcome !== null) return null;
  const stage: TripStage = /^CANCEL+ED$/i.test(e.data.outcome) ? 'CANCELLED' : 'COMPLETED';
  return changed(current, {
    tripId: e.data.tripId,
    serial: e.serial,
    tripType: null,
    deliveryId: null,
    startedAt: null,
    ...current,
    stage: current?.endedAt != null ? current.stage : stage,
    outcome: e.data.outcome,
    endedAt: current?.endedAt ?? t,
    occurredAt: Math.max(current?.occurredAt ?? t, t),
  });
};

export const applyFoTaskCreated: Reduce<FoTaskReplica, 'FoTask.Created'> = (current, e) => {
  const t = ms(e);
  const takesStatus = current === null || newer(current, t);
  return changed(current, {
    taskId: e.data.taskId,
    serial: takesStatus ? e.serial : current!.serial,
    taskType: e.data.taskType,
    status: takesStatus ? e.data.status : current!.status,
    createdAt: t,
    occurredAt: takesStatus ? t : current!.occurredAt,
  });
};

export const applyFoTaskStatusChanged: Reduce<FoTaskReplica, 'FoTask.StatusChanged'> = (current, e) => {
  const t = ms(e);
  if (current !== null && !newer(current, t)) return null;
  return changed(current, {
    taskId: e.data.taskId,
    taskType: current?.taskType ?? null,
    createdAt: current?.createdAt ?? null,
    serial: e.serial,
    status: e.data.status,
    occurredAt: t,
  });
};

export const applyDeploymentCreated: Reduce<DeploymentReplica, 'Deployment.Created'> = (current, e) => {
  const t = ms(e);
  return changed(current, {
    deploymentId: e.data.deploymentId,
    serial: current === null || newer(current, t) ? e.serial : current.serial,
    needsPickup: current?.needsPickup ?? false,
    endedAt: current?.endedAt ?? null,
    locationId: e.data.locationId,
    startedAt: t,
    occurredAt: Math.max(current?.occurredAt ?? t, t),
  });
};

export const applyDeploymentPickupRequested: Reduce<DeploymentReplica, 'Deployment.PickupRequested'> = (current, e) => {
  const t = ms(e);
  if (current?.endedAt != null) return null;
  return changed(current, {
    deploymentId: e.data.deploymentId,
    serial: current?.serial ?? e.serial,
    locationId: current?.locationId ?? null,
    startedAt: current?.startedAt ?? null,
    endedAt: null,
    needsPickup: true,
    occurredAt: Math.max(current?.occurredAt ?? t, t),
  });
};

export const applyDeploymentEnded: Reduce<DeploymentReplica, 'Deployment.Ended'> = (current, e) => {
  const t = ms(e);
  if (current?.endedAt != null) return null;
  return changed(current, {
    deploymentId: e.data.deploymentId,
    serial: current?.serial ?? e.serial,
    locationId: current?.locationId ?? null,
    startedAt: current?.startedAt ?? null,
    needsPickup: current?.needsPickup ?? false,
    endedAt: t,
    occurredAt: Math.max(current?.occurredAt ?? t, t),
  });
};

export const applyProviderMappingCreated: Reduce<ProviderMappingReplica, 'ProviderMapping.Created'> = (current, e) => {
  const t = ms(e);
  return changed(current, {
    provider: e.data.provider,
    deliveryId: e.data.deliveryId,
    serial: current === null || newer(current, t) ? e.serial : current.serial,
    providerVehicleId: e.data.providerVehicleId,
    dropoff: e.data.dropoff ?? current?.dropoff ?? null,
    createdAt: t,
    endedAt: current?.endedAt ?? null,
    occurredAt: Math.max(current?.occurredAt ?? t, t),
  });
};

export const applyProviderMappingEnded: Reduce<ProviderMappingReplica, 'ProviderMapping.Ended'> = (current, e) => {
  const t = ms(e);
  if (current?.endedAt != null) return null;
  return changed(current, {
    provider: e.data.provider,
    deliveryId: e.data.deliveryId,
    serial: current?.serial ?? e.serial,
    providerVehicleId: current?.providerVehicleId ?? null,
    dropoff: current?.dropoff ?? null,
    createdAt: current?.createdAt ?? null,
    endedAt: t,
    occurredAt: Math.max(current?.occurredAt ?? t, t),
  });
};

/**
 * A newer status wins, and a terminal one is final. The merchant, customer and demand ids never
 * change for a delivery: the newest fact naming one wins, and an older fact only fills in one
 * still missing (it cannot move the status).
 */
export const applyDeliveryStatusChanged: Reduce<DeliveryReplica, 'Delivery.StatusChanged'> = (current, e) => {
  const t = ms(e);
  const takesStatus = current === null || (current.endedAt === null && newer(current, t));
  const id = (given: string | undefined, held: string | null | undefined) => (takesStatus ? (given ?? held ?? null) : (held ?? given ?? null));
  const status = takesStatus ? e.data.status : current!.status;
  return changed(current, {
    deliveryId: e.data.deliveryId,
    serial: takesStatus ? e.serial : current!.serial,
    status,
    merchantId: id(e.data.merchantId, current?.merchantId),
    customerId: id(e.data.customerId, current?.customerId),
    demandId: id(e.data.demandId, current?.demandId),
    endedAt: current?.endedAt ?? (terminalDeliveryStatuses.includes(status) ? t : null),
    occurredAt: takesStatus ? t : current!.occurredAt,
  });
};

// ---- One robot's facts, as the fleet_devices row holds them.

export type FleetRowFacts = {
  activeTrip: Pick<TripReplica, 'tripId' | 'tripType' | 'stage' | 'deliveryId' | 'startedAt'> | null;
  /** Open tasks, oldest first. */
  foTasks: Pick<FoTaskReplica, 'taskId' | 'taskType' | 'status' | 'createdAt'>[];
  deployment: Pick<DeploymentReplica, 'deploymentId' | 'locationId' | 'needsPickup'> | null;
  providerMappings: Pick<ProviderMappingReplica, 'provider' | 'providerVehicleId' | 'deliveryId' | 'createdAt'>[];
  /** The delivery the robot is on: its active trip's, else its newest unfinished one. */
  activeDelivery: Pick<DeliveryReplica, 'deliveryId' | 'status' | 'merchantId' | 'customerId' | 'demandId'> | null;
};

const latestFirst = (a: { startedAt: number | null; occurredAt: number }, b: typeof a) =>
  (b.startedAt ?? b.occurredAt) - (a.startedAt ?? a.occurredAt);

/**
 * The robot's current facts from its replicas: the newest unfinished trip and deployment, open
 * tasks, live mappings, and the delivery it is on (`deliveries` holds the robot's unfinished
 * deliveries and those its unfinished trips name).
 */
export function fleetRowFacts(replicas: {
  trips: TripReplica[];
  tasks: FoTaskReplica[];
  deployments: DeploymentReplica[];
  mappings: ProviderMappingReplica[];
  deliveries?: DeliveryReplica[];
}): FleetRowFacts {
  const trip = replicas.trips.filter((t) => t.endedAt === null).sort(latestFirst)[0] ?? null;
  const deployment = replicas.deployments.filter((d) => d.endedAt === null).sort(latestFirst)[0] ?? null;
  const deliveries = replicas.deliveries ?? [];
  const delivery =
    (trip?.deliveryId != null ? deliveries.find((d) => d.deliveryId === trip.deliveryId) : undefined) ??
    deliveries.filter((d) => d.endedAt === null).sort((a, b) => b.occurredAt - a.occurredAt || a.deliveryId.localeCompare(b.deliveryId))[0] ??
    null;
  return {
    activeTrip: trip && { tripId: trip.tripId, tripType: trip.tripType, stage: trip.stage, deliveryId: trip.deliveryId, startedAt: trip.startedAt },
    foTasks: replicas.tasks
      .filter((t) => openFoTaskStatuses.includes(t.status))
      .sort((a, b) => (a.createdAt ?? a.occurredAt) - (b.createdAt ?? b.occurredAt) || a.taskId.localeCompare(b.taskId))
      .map(({ taskId, taskType, status, createdAt }) => ({ taskId, taskType, status, createdAt })),
    deployment: deployment && { deploymentId: deployment.deploymentId, locationId: deployment.locationId, needsPickup: deployment.needsPickup },
    providerMappings: replicas.mappings
      .filter((m) => m.endedAt === null)
      .sort((a, b) => (a.createdAt ?? a.occurredAt) - (b.createdAt ?? b.occurredAt))
      .map(({ provider, providerVehicleId, deliveryId, createdAt }) => ({ provider, providerVehicleId, deliveryId, createdAt })),
    activeDelivery: delivery && {
      deliveryId: delivery.deliveryId,
      status: delivery.status,
      merchantId: delivery.merchantId,
      customerId: delivery.customerId,
      demandId: delivery.demandId,
    },
  };
}

/** What computeFleetStatus needs of a row's facts. */
export function businessFacts(facts: FleetRowFacts): BusinessFacts {
  return {
    activeTrip: facts.activeTrip && { tripId: facts.activeTrip.tripId, tripType: facts.activeTrip.tripType, stage: facts.activeTrip.stage },
    foTasks: facts.foTasks.map((t) => ({ taskId: t.taskId, status: t.status })),
    deployment: facts.deployment && { deploymentId: facts.deployment.deploymentId, needsPickup: facts.deployment.needsPickup },
  };
}
