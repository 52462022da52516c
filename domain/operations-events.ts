import { z } from 'zod';
import { serialSchema } from './heartbeat';
import { declarePattern } from './json-schema';
import { seedEnum } from './seed-enum';

/**
 * Business facts from Operations and Deliveries (CONTRACT.md `POST /v1/operations-events`), each
 * `{ id, type, serial, occurredAt, data }` with `data` checked per type. Enum values are the seed's
 * names without prefix (`AT_PICKUP`); the prefixed proto names (`TRIP_STAGE_AT_PICKUP`) are accepted too.
 */

export const tripTypes = ['DELIVERY', 'RETURN', 'DEPLOYMENT', 'PICKUP', 'RELOCATION'] as const;
export const tripStages = [
  'SCHEDULED',
  'EN_ROUTE_TO_PICKUP',
  'AT_PICKUP',
  'LOADING',
  'LOADED',
  'EN_ROUTE_TO_DROPOFF',
  'AT_DROPOFF',
  'UNLOADING',
  'COMPLETED',
  'CANCELLED',
] as const;
export const foTaskTypes = ['BATTERY_SWAP', 'UNSTUCK_BOT', 'INSPECT', 'REPAIR', 'PICKUP', 'DROPOFF'] as const;
export const foTaskStatuses = ['PENDING', 'ASSIGNED', 'IN_PROGRESS', 'COMPLETED', 'CANCELLED'] as const;
/** A delivery as Deliveries reports it (docs/fleet-view-and-partners.md, "Delivery facts"); the seeds name no statuses, so these are ours. */
export const deliveryStatuses = [
  'PENDING',
  'ASSIGNED',
  'EN_ROUTE_TO_PICKUP',
  'AT_PICKUP',
  'PICKED_UP',
  'EN_ROUTE_TO_DROPOFF',
  'AT_DROPOFF',
  'DELIVERED',
  'CANCELLED',
  'FAILED',
] as const;

export type TripType = (typeof tripTypes)[number];
export type TripStage = (typeof tripStages)[number];
export type FoTaskType = (typeof foTaskTypes)[number];
export type FoTaskStatus = (typeof foTaskStatuses)[number];
export type DeliveryStatus = (typeof deliveryStatuses)[number];

/** Stages after which a trip is no longer active. */
export const terminalTripStages: readonly TripStage[] = ['COMPLETED', 'CANCELLED'];
export const openFoTaskStatuses: readonly FoTaskStatus[] = ['PENDING', 'ASSIGNED', 'IN_PROGRESS'];
/** Statuses after which a delivery is over: final, as a trip's end is. */
export const terminalDeliveryStatuses: readonly DeliveryStatus[] = ['DELIVERED', 'CANCELLED', 'FAILED'];

export const tripTypeSchema = seedEnum(tripTypes, 'TRIP_TYPE_');
export const tripStageSchema = seedEnum(tripStages, 'TRIP_STAGE_');
export const foTaskTypeSchema = seedEnum(foTaskTypes, 'FO_TASK_TYPE_');
export const foTaskStatusSchema = seedEnum(foTaskStatuses, 'FO_TASK_STATUS_');
export const deliveryStatusSchema = seedEnum(deliveryStatuses, 'DELIVERY_STATUS_');

const entityId = z.string().min(1).max(200);
/** A partner's name, as ProviderMapping facts and the partner routes take it: case-insensitive, kept lower case. */
export const providerSchema = z
  .string()
  .min(1)
  .max(50)
  .regex(/^[A-Za-z0-9_-]+$/, 'provider may hold only letters, digits, "_" and "-"')
  .transform((p) => p.toLowerCase());
/** A partner's own id for the vehicle (our robot) on one of its deliveries. */
export const providerVehicleIdSchema = entityId;

const envelope = {
  id: entityId.describe('unique per fact: a repeat with the same id changes nothing'),
  serial: serialSchema,
  occurredAt: declarePattern(z.iso.datetime({ offset: true })).describe('RFC 3339; a fact older than one already applied to the same entity is ignored'),
};

const fact = <T extends string, D extends z.ZodRawShape>(type: T, data: D) =>
  z.object({ ...envelope, type: z.literal(type), data: z.object(data) });

export const operationsEventSchema = z.discriminatedUnion('type', [
  fact('Trip.Created', { tripId: entityId, tripType: tripTypeSchema, deliveryId: entityId.optional() }),
  fact('Trip.StageChanged', { tripId: entityId, stage: tripStageSchema }),
  fact('Trip.Completed', { tripId: entityId, outcome: z.string().min(1).max(100) }),
  fact('FoTask.Created', { taskId: entityId, taskType: foTaskTypeSchema, status: foTaskStatusSchema }),
  fact('FoTask.StatusChanged', { taskId: entityId, status: foTaskStatusSchema }),
  fact('Deployment.Created', { deploymentId: entityId, locationId: entityId }),
  // Not in CONTRACT.md: the one fact that makes NEEDS_UNDEPLOYMENT reachable (docs/fleet-view-and-partners.md).
  fact('Deployment.PickupRequested', { deploymentId: entityId }),
  fact('Deployment.Ended', { deploymentId: entityId }),
  fact('ProviderMapping.Created', {
    provider: providerSchema,
    providerVehicleId: providerVehicleIdSchema,
    deliveryId: entityId,
    dropoff: z.object({ lat: z.number().min(-90).max(90), lng: z.number().min(-180).max(180) }).optional(),
  }),
  fact('ProviderMapping.Ended', { provider: providerSchema, deliveryId: entityId }),
  fact('Delivery.StatusChanged', {
    deliveryId: entityId,
    status: deliveryStatusSchema,
    merchantId: entityId.optional(),
    customerId: entityId.optional(),
    demandId: entityId.optional(),
  }),
]);
export type OperationsEvent = z.output<typeof operationsEventSchema>;
export type OperationsEventType = OperationsEvent['type'];
export type OperationsEventOf<T extends OperationsEventType> = Extract<OperationsEvent, { type: T }>;

export const MAX_OPERATIONS_EVENTS_PER_REQUEST = 500;

/** A request body holds one event, or `{ events: [...] }` with up to 500. */
export const operationsEventBatchSchema = z.object({
  events: z.array(operationsEventSchema).min(1).max(MAX_OPERATIONS_EVENTS_PER_REQUEST),
});

/** APPLIED: it changed the replica. STALE: stored, but a newer fact about its entity was already applied. DUPLICATE: seen before. */
export type OperationsEventOutcome = 'APPLIED' | 'STALE' | 'DUPLICATE';
