import { z } from 'zod';
import { deviceName, deviceSchema, emptyDriveuStatus, emptyGreengrassStatus, type Device } from './device';
import type { FleetRowFacts } from './fleet-facts';
import { fleetStatuses, type FleetStatus } from './fleet-status';

/**
 * The seed's `coco.fleet.v1.FleetDevice` in proto3 JSON (camelCase, enums by value name), with the
 * derived status flattened as CONTRACT.md shows it: `status` (ON_TRIP...) and `statusReason`.
 * Beyond the seed: `deployment`, `activeDelivery` (seed 001's view keeps the active delivery's status,
 * merchant and customer), `providerMappings[].deliveryId`, `replicaMetadata.deploymentsLastSynced`.
 */

const timestamp = z.string().describe('RFC 3339 timestamp');

export const fleetDeviceSchema = z.object({
  name: z.string().describe('fleetDevices/{serial}'),
  device: deviceSchema,
  status: z.enum(fleetStatuses),
  statusReason: z.string(),
  activeTrip: z
    .object({
      tripId: z.string(),
      tripType: z.string().describe('TRIP_TYPE_DELIVERY, ...; TRIP_TYPE_UNSPECIFIED until Trip.Created arrives'),
      currentStage: z.string().describe('TRIP_STAGE_AT_PICKUP, ...'),
      demandId: z.string().describe("the trip's delivery's, from Delivery.StatusChanged; empty until known"),
      deliveryId: z.string(),
      merchantId: z.string().describe("the trip's delivery's, from Delivery.StatusChanged; empty until known"),
      customerId: z.string().describe("the trip's delivery's, from Delivery.StatusChanged; empty until known"),
      startedAt: timestamp.nullable(),
    })
    .nullable(),
  activeDelivery: z
    .object({
      deliveryId: z.string(),
      status: z.string().describe('DELIVERY_STATUS_EN_ROUTE_TO_DROPOFF, ...'),
      merchantId: z.string(),
      customerId: z.string(),
      demandId: z.string(),
    })
    .nullable()
    .describe("the delivery the robot is on: its active trip's, else its newest unfinished one (Delivery.StatusChanged)"),
  activePilot: z
    .object({ pilotId: z.string(), pilotName: z.string(), sessionStartedAt: timestamp.nullable(), sessionId: z.string() })
    .nullable()
    .describe('while the DriveU streamer is connected to a pilot'),
  foTasks: z.array(
    z.object({ taskId: z.string(), taskType: z.string(), taskStatus: z.string(), createdAt: timestamp.nullable() }),
  ),
  providerMappings: z.array(
    z.object({ provider: z.string(), providerVehicleId: z.string(), deliveryId: z.string(), createdAt: timestamp.nullable() }),
  ),
  deployment: z.object({ deploymentId: z.string(), locationId: z.string(), needsPickup: z.boolean() }).nullable(),
  activeLidCycle: z
    .object({ cycleId: z.string(), contextId: z.string(), status: z.string(), startedAt: timestamp.nullable() })
    .nullable(),
  replicaMetadata: z.object({
    deviceLastSynced: timestamp.nullable(),
    tripsLastSynced: timestamp.nullable(),
    tasksLastSynced: timestamp.nullable(),
    deliveriesLastSynced: timestamp.nullable(),
    deploymentsLastSynced: timestamp.nullable(),
    potentiallyStale: z.boolean().describe('the device data is older than FLEET_STALE_AFTER_SECONDS'),
  }),
});
export type FleetDevice = z.infer<typeof fleetDeviceSchema>;

export const fleetDeviceName = (serial: string) => `fleetDevices/${serial}`;

/** A fleet_devices row as the API reads it; times are epoch ms. */
export type FleetRow = {
  serial: string;
  status: FleetStatus;
  statusReason: string;
  facts: FleetRowFacts;
  pilotSessionStartedAt: number | null;
  tripsSyncedAt: number | null;
  tasksSyncedAt: number | null;
  deploymentsSyncedAt: number | null;
  deliveriesSyncedAt: number | null;
  createdAt: number;
};

export type LidCycleSummary = { cycleId: string; contextId: string | null; status: string; startedAt: number };

export type FleetDeviceContext = {
  device: Device;
  /** When the device source last wrote the projection; null when it never has. */
  deviceSyncedAt: number | null;
  activeLidCycle: LidCycleSummary | null;
  now: number;
  staleAfterMs: number;
};

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

/** Stale when the device part is older than the threshold: the robot, or our view of it, has gone quiet. */
export function isPotentiallyStale(deviceSyncedAt: number | null, now: number, staleAfterMs: number): boolean {
  return deviceSyncedAt === null || now - deviceSyncedAt > staleAfterMs;
}

export function toFleetDevice(row: FleetRow, ctx: FleetDeviceContext): FleetDevice {
  const { activeTrip, foTasks, deployment, providerMappings, activeDelivery } = row.facts;
  const driveu = ctx.device.driveuStatus;
  // The trip shows its delivery's ids once Deliveries has named them.
  const tripDelivery = activeDelivery !== null && activeTrip?.deliveryId === activeDelivery.deliveryId ? activeDelivery : null;
  return {
    name: fleetDeviceName(row.serial),
    device: ctx.device,
    status: row.status,
    statusReason: row.statusReason,
    activeTrip: activeTrip && {
      tripId: activeTrip.tripId,
      tripType: `TRIP_TYPE_${activeTrip.tripType ?? 'UNSPECIFIED'}`,
      currentStage: `TRIP_STAGE_${activeTrip.stage}`,
      demandId: tripDelivery?.demandId ?? '',
      deliveryId: activeTrip.deliveryId ?? '',
      merchantId: tripDelivery?.merchantId ?? '',
      customerId: tripDelivery?.customerId ?? '',
      startedAt: iso(activeTrip.startedAt),
    },
    activeDelivery: activeDelivery && {
      deliveryId: activeDelivery.deliveryId,
      status: `DELIVERY_STATUS_${activeDelivery.status}`,
      merchantId: activeDelivery.merchantId ?? '',
      customerId: activeDelivery.customerId ?? '',
      demandId: activeDelivery.demandId ?? '',
    },
    activePilot: driveu.pilotConnected
      ? { pilotId: '', pilotName: '', sessionStartedAt: iso(row.pilotSessionStartedAt), sessionId: driveu.sessionId }
      : null,
    foTasks: foTasks.map((t) => ({
      taskId: t.taskId,
      taskType: `FO_TASK_TYPE_${t.taskType ?? 'UNSPECIFIED'}`,
      taskStatus: `FO_TASK_STATUS_${t.status}`,
      createdAt: iso(t.createdAt),
    })),
    providerMappings: providerMappings.map((m) => ({
      provider: m.provider,
      providerVehicleId: m.providerVehicleId ?? '',
      deliveryId: m.deliveryId,
      createdAt: iso(m.createdAt),
    })),
    deployment: deployment && { deploymentId: deployment.deploymentId, locationId: deployment.locationId ?? '', needsPickup: deployment.needsPickup },
    activeLidCycle: ctx.activeLidCycle && {
      cycleId: ctx.activeLidCycle.cycleId,
      contextId: ctx.activeLidCycle.contextId ?? '',
      status: `LID_CYCLE_STATUS_${ctx.activeLidCycle.status}`,
      startedAt: iso(ctx.activeLidCycle.startedAt),
    },
    replicaMetadata: {
      deviceLastSynced: iso(ctx.deviceSyncedAt),
      tripsLastSynced: iso(row.tripsSyncedAt),
      tasksLastSynced: iso(row.tasksSyncedAt),
      deliveriesLastSynced: iso(row.deliveriesSyncedAt),
      deploymentsLastSynced: iso(row.deploymentsSyncedAt),
      potentiallyStale: isPotentiallyStale(ctx.deviceSyncedAt, ctx.now, ctx.staleAfterMs),
    },
  };
}

/** The device part of a robot Operations knows but that has never sent a heartbeat. */
export function deviceNeverSeen(serial: string, createdAt: number): Device {
  const at = new Date(createdAt).toISOString();
  return {
    name: deviceName(serial),
    location: null,
    batteries: [],
    connectivity: { online: false, networkType: 'NETWORK_TYPE_UNSPECIFIED', signalStrength: 0, updatedAt: null },
    lidState: { isOpen: false, updatedAt: null },
    componentStatuses: [],
    driveuStatus: emptyDriveuStatus,
    greengrassStatus: emptyGreengrassStatus,
    createdAt: at,
    updatedAt: at,
  };
}
