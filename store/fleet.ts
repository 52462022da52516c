import { Prisma as Sql } from '../generated/prisma/client';
import { rowFromJson, type Prisma } from '../infra/prisma';
import { deviceFromProjection, mergeLiveWithProjection, type DeviceProjection } from '../domain/device-projection';
import type { DomainEvent } from '../domain/events';
import type { DriveuState } from '../domain/driveu';
import {
  applyDeploymentCreated,
  applyDeploymentEnded,
  applyDeploymentPickupRequested,
  applyDeliveryStatusChanged,
  applyFoTaskCreated,
  applyFoTaskStatusChanged,
  applyProviderMappingCreated,
  applyProviderMappingEnded,
  applyTripCompleted,
  applyTripCreated,
  applyTripStageChanged,
  businessFacts,
  fleetRowFacts,
  type DeliveryReplica,
  type DeploymentReplica,
  type FleetRowFacts,
  type FoTaskReplica,
  type ProviderMappingReplica,
  type TripReplica,
} from '../domain/fleet-facts';
import { deviceNeverSeen, toFleetDevice, type FleetDevice, type FleetRow, type LidCycleSummary } from '../domain/fleet-device';
import { computeFleetStatus, fleetStatuses, type FleetFactsUpdate, type FleetStatus } from '../domain/fleet-status';
import { FilterError, type FilterExpr, type FilterFields, type FilterValue } from '../domain/filter';
import { deliveryStatuses, type OperationsEvent, type OperationsEventOutcome } from '../domain/operations-events';
import type { DeliverySnapshot } from '../domain/partner-delivery';
import type { PartnerRobotState, PartnerVehicleRead } from '../domain/partner-vehicle';
import { robotStateToDevice, type RobotState } from '../domain/robot-state';
import { filterToSql, filterTypes, sqlOperator, type SqlFilterField, type SqlFilterFields } from './filter-sql';

/**
 * The fleet view (seed 001 "Fleet Device Service Database"): business facts replicated per entity,
 * denormalised into one `fleet_devices` row per robot whose status domain/fleet-status.ts derives
 * from those facts and the projection's `online`. Every writer of a row's status takes the robot's
 * row lock and recomputes from what is committed, so the last writer always sees the latest facts.
 */

type Db = Sql.TransactionClient;

export class OperationsEventConflict extends Error {
  constructor(readonly id: string) {
    super(`event ${id} was already received with different content`);
  }
}

export type FleetFactsSignal = { serial: string; update: FleetFactsUpdate };
export type DeliverySignal = { mapping: ProviderMappingReplica; snapshot: DeliverySnapshot };
export type OperationsEventsResult = {
  results: { id: string; outcome: OperationsEventOutcome }[];
  /** Every robot the request is about, with its current facts (duplicates too: a retry re-signals). */
  robots: FleetFactsSignal[];
  /** Every provider mapping the request touches, with the delivery as it stands. */
  deliveries: DeliverySignal[];
};

type Source = 'trips' | 'tasks' | 'deployments' | 'deliveries';

const sourceOf = (e: OperationsEvent): Source =>
  e.type.startsWith('Trip.') ? 'trips' : e.type.startsWith('FoTask.') ? 'tasks' : e.type.startsWith('Deployment.') ? 'deployments' : 'deliveries';

const entityKey = (e: OperationsEvent): string => {
  switch (e.type) {
    case 'Trip.Created':
    case 'Trip.StageChanged':
    case 'Trip.Completed':
      return `trip:${e.data.tripId}`;
    case 'FoTask.Created':
    case 'FoTask.StatusChanged':
      return `fo-task:${e.data.taskId}`;
    case 'Deployment.Created':
    case 'Deployment.PickupRequested':
    case 'Deployment.Ended':
      return `deployment:${e.data.deploymentId}`;
    case 'ProviderMapping.Created':
    case 'ProviderMapping.Ended':
      return `provider-mapping:${e.data.provider}:${e.data.deliveryId}`;
    case 'Delivery.StatusChanged':
      return `delivery:${e.data.deliveryId}`;
  }
};

const lock = (db: Db, key: string) => db.$executeRaw`SELECT pg_advisory_xact_lock(hashtext(${key}))`;

/**
 * Stores the events (idempotent by id), applies the new ones to the replicas in one transaction,
 * and refreshes each robot's fleet row. Locks are taken entity first, then robots in serial order,
 * so two requests never wait on each other in a circle.
 */
export async function applyOperationsEvents(prisma: Prisma, events: OperationsEvent[]): Promise<OperationsEventsResult> {
  const unique = firstOfEachId(events);
  const outcomes = new Map<string, OperationsEventOutcome>();
  const touched = new Map<string, Set<Source>>();
  await prisma.$transaction(
    async (tx) => {
      const fresh = await insertNew(tx, unique);
      const ordered = unique
        .filter((e) => fresh.has(e.id))
        .sort((a, b) => entityKey(a).localeCompare(entityKey(b)) || Date.parse(a.occurredAt) - Date.parse(b.occurredAt));
      for (const event of ordered) {
        await lock(tx, entityKey(event));
        const serials = await applyEvent(tx, event);
        outcomes.set(event.id, serials.length > 0 ? 'APPLIED' : 'STALE');
        for (const s of [event.serial, ...serials]) touched.set(s, (touched.get(s) ?? new Set()).add(sourceOf(event)));
      }
      for (const serial of [...touched.keys()].sort()) await refreshLocked(tx, serial, { synced: touched.get(serial) });
      if (outcomes.size > 0) {
        const ids = [...outcomes.keys()];
        await tx.$executeRaw`
          UPDATE operations_events e SET outcome = u.outcome
          FROM unnest(${ids}::text[], ${ids.map((id) => outcomes.get(id)!)}::text[]) AS u(id, outcome) WHERE e.id = u.id`;
      }
    },
    { timeout: 30_000, maxWait: 10_000 },
  );
  const serials = [...new Set(events.map((e) => e.serial).concat([...touched.keys()]))];
  return {
    results: events.map((e) => ({ id: e.id, outcome: unique.includes(e) ? (outcomes.get(e.id) ?? 'DUPLICATE') : 'DUPLICATE' })),
    robots: await readFactsUpdates(prisma, serials),
    deliveries: await deliveriesTouchedBy(prisma, events),
  };
}

/** An id repeated within one request counts once; repeated with other content, it is a conflict. */
function firstOfEachId(events: OperationsEvent[]): OperationsEvent[] {
  const first = new Map<string, OperationsEvent>();
  for (const e of events) {
    const seen = first.get(e.id);
    if (seen === undefined) first.set(e.id, e);
    else if (JSON.stringify(seen) !== JSON.stringify(e)) throw new OperationsEventConflict(e.id);
  }
  return [...first.values()];
}

/** Inserts what is new; a known id with different content is a conflict, an identical one a duplicate. */
async function insertNew(tx: Db, events: OperationsEvent[]): Promise<Set<string>> {
  const rows = await tx.$queryRaw<{ id: string }[]>`
    INSERT INTO operations_events (id, type, serial_number, occurred_at, data, outcome)
    SELECT u.id, u.type, u.serial, u.at, u.data, 'PENDING'
    FROM unnest(${events.map((e) => e.id)}::text[], ${events.map((e) => e.type)}::text[], ${events.map((e) => e.serial)}::text[],
      ${events.map((e) => new Date(e.occurredAt))}::timestamptz[], ${events.map((e) => JSON.stringify(e.data))}::jsonb[])
      AS u(id, type, serial, at, data)
    ON CONFLICT (id) DO NOTHING
    RETURNING id`;
  const fresh = new Set(rows.map((r) => r.id));
  const seen = events.filter((e) => !fresh.has(e.id));
  if (seen.length > 0) {
    const differing = await tx.$queryRaw<{ id: string }[]>`
      SELECT e.id FROM operations_events e
      JOIN unnest(${seen.map((x) => x.id)}::text[], ${seen.map((x) => x.type)}::text[], ${seen.map((x) => x.serial)}::text[],
        ${seen.map((x) => new Date(x.occurredAt))}::timestamptz[], ${seen.map((x) => JSON.stringify(x.data))}::jsonb[])
        AS u(id, type, serial, at, data) ON e.id = u.id
      WHERE (e.type, e.serial_number, e.occurred_at, e.data) IS DISTINCT FROM (u.type, u.serial, u.at::timestamptz(3), u.data)`;
    if (differing.length > 0) throw new OperationsEventConflict(differing[0].id);
  }
  return fresh;
}

/** Applies one new event to its entity; returns the robots whose facts changed (none: it was stale). */
async function applyEvent(tx: Db, e: OperationsEvent): Promise<string[]> {
  switch (e.type) {
    case 'Trip.Created':
    case 'Trip.StageChanged':
    case 'Trip.Completed': {
      const current = await readTrip(tx, e.data.tripId);
      const next =
        e.type === 'Trip.Created' ? applyTripCreated(current, e) : e.type === 'Trip.StageChanged' ? applyTripStageChanged(current, e) : applyTripCompleted(current, e);
      if (next === null) return [];
      await writeTrip(tx, next);
      return affected(current, next);
    }
    case 'FoTask.Created':
    case 'FoTask.StatusChanged': {
      const current = await readTask(tx, e.data.taskId);
      const next = e.type === 'FoTask.Created' ? applyFoTaskCreated(current, e) : applyFoTaskStatusChanged(current, e);
      if (next === null) return [];
      await writeTask(tx, next);
      return affected(current, next);
    }
    case 'Deployment.Created':
    case 'Deployment.PickupRequested':
    case 'Deployment.Ended': {
      const current = await readDeployment(tx, e.data.deploymentId);
      const next =
        e.type === 'Deployment.Created'
          ? applyDeploymentCreated(current, e)
          : e.type === 'Deployment.PickupRequested'
            ? applyDeploymentPickupRequested(current, e)
            : applyDeploymentEnded(current, e);
      if (next === null) return [];
      await writeDeployment(tx, next);
      return affected(current, next);
    }
    case 'ProviderMapping.Created':
    case 'ProviderMapping.Ended': {
      const current = await readMapping(tx, e.data.provider, e.data.deliveryId);
      const next = e.type === 'ProviderMapping.Created' ? applyProviderMappingCreated(current, e) : applyProviderMappingEnded(current, e);
      if (next === null) return [];
      await writeMapping(tx, next);
      return affected(current, next);
    }
    case 'Delivery.StatusChanged': {
      const current = await readDelivery(tx, e.data.deliveryId);
      const next = applyDeliveryStatusChanged(current, e);
      if (next === null) return [];
      await writeDelivery(tx, next);
      return affected(current, next);
    }
  }
}

const affected = (current: { serial: string } | null, next: { serial: string }) =>
  current === null || current.serial === next.serial ? [next.serial] : [current.serial, next.serial];

// ---- The fleet row

export type RefreshOptions = {
  /** The robot workflow's live `online` (`?fresh=true`), instead of the projection's. */
  online?: boolean;
  /** Sources that just delivered facts for this robot. */
  synced?: ReadonlySet<Source>;
};

/** Recomputes a robot's fleet row from its replicas and the projection (creating it if needed). */
export async function refreshFleetRow(prisma: Prisma, serial: string, options: RefreshOptions = {}): Promise<void> {
  await prisma.$transaction((tx) => refreshLocked(tx, serial, options));
}

async function refreshLocked(tx: Db, serial: string, options: RefreshOptions): Promise<void> {
  await lock(tx, `fleet:${serial}`);
  const facts = fleetRowFacts(await readReplicas(tx, serial));
  const [device] = await tx.$queryRaw<{ online: boolean }[]>`SELECT online FROM devices WHERE serial_number = ${serial}`;
  const online = options.online ?? device?.online ?? false;
  const { status, statusReason } = computeFleetStatus({ online, ...businessFacts(facts) });
  const current = await tx.fleetDevice.findUnique({ where: { serialNumber: serial } });
  const factsChanged = current === null || JSON.stringify(rowFacts(current)) !== JSON.stringify(facts);
  const now = new Date();
  const synced = (source: Source) => (options.synced?.has(source) ? now : undefined);
  const columns = {
    status,
    statusReason,
    activeTripId: facts.activeTrip?.tripId ?? null,
    activeTripType: facts.activeTrip?.tripType ?? null,
    activeTripStage: facts.activeTrip?.stage ?? null,
    activeDeliveryId: facts.activeTrip?.deliveryId ?? null,
    activeTripStartedAt: dateOrNull(facts.activeTrip?.startedAt),
    foTasks: facts.foTasks,
    foTaskCount: facts.foTasks.length,
    deploymentId: facts.deployment?.deploymentId ?? null,
    deploymentLocationId: facts.deployment?.locationId ?? null,
    deploymentNeedsPickup: facts.deployment?.needsPickup ?? false,
    providerMappings: facts.providerMappings,
    deliveryId: facts.activeDelivery?.deliveryId ?? null,
    deliveryStatus: facts.activeDelivery?.status ?? null,
    deliveryMerchantId: facts.activeDelivery?.merchantId ?? null,
    deliveryCustomerId: facts.activeDelivery?.customerId ?? null,
    deliveryDemandId: facts.activeDelivery?.demandId ?? null,
    tripsSyncedAt: synced('trips'),
    tasksSyncedAt: synced('tasks'),
    deploymentsSyncedAt: synced('deployments'),
    deliveriesSyncedAt: synced('deliveries'),
  };
  if (current === null) {
    await tx.fleetDevice.create({ data: { serialNumber: serial, ...columns, factsVersion: 1, statusChangedAt: now } });
    return;
  }
  if (!factsChanged && current.status === status && current.statusReason === statusReason && options.synced === undefined) return;
  await tx.fleetDevice.update({
    where: { serialNumber: serial },
    data: {
      ...columns,
      factsVersion: factsChanged ? { increment: 1 } : undefined,
      statusChangedAt: current.status === status ? undefined : now,
      updatedAt: now,
    },
  });
}

const dateOrNull = (ms: number | null | undefined) => (ms == null ? null : new Date(ms));
const msOrNull = (d: Date | null) => d?.getTime() ?? null;

type FleetDeviceRow = NonNullable<Awaited<ReturnType<Prisma['fleetDevice']['findUnique']>>>;

function rowFacts(row: FleetDeviceRow): FleetRowFacts {
  return {
    activeTrip:
      row.activeTripId === null
        ? null
        : {
            tripId: row.activeTripId,
            tripType: row.activeTripType as TripReplica['tripType'],
            stage: row.activeTripStage as TripReplica['stage'],
            deliveryId: row.activeDeliveryId,
            startedAt: msOrNull(row.activeTripStartedAt),
          },
    foTasks: row.foTasks as FleetRowFacts['foTasks'],
    deployment:
      row.deploymentId === null
        ? null
        : { deploymentId: row.deploymentId, locationId: row.deploymentLocationId, needsPickup: row.deploymentNeedsPickup },
    providerMappings: row.providerMappings as FleetRowFacts['providerMappings'],
    activeDelivery:
      row.deliveryId === null
        ? null
        : {
            deliveryId: row.deliveryId,
            status: row.deliveryStatus as DeliveryReplica['status'],
            merchantId: row.deliveryMerchantId,
            customerId: row.deliveryCustomerId,
            demandId: row.deliveryDemandId,
          },
  };
}

export function toFleetRow(row: FleetDeviceRow): FleetRow {
  return {
    serial: row.serialNumber,
    status: row.status as FleetStatus,
    statusReason: row.statusReason,
    facts: rowFacts(row),
    pilotSessionStartedAt: msOrNull(row.pilotSessionStartedAt),
    tripsSyncedAt: msOrNull(row.tripsSyncedAt),
    tasksSyncedAt: msOrNull(row.tasksSyncedAt),
    deploymentsSyncedAt: msOrNull(row.deploymentsSyncedAt),
    deliveriesSyncedAt: msOrNull(row.deliveriesSyncedAt),
    createdAt: row.createdAt.getTime(),
  };
}

/** The facts update the robot workflow gets, per robot, from the committed rows. */
export async function readFactsUpdates(prisma: Prisma, serials: string[]): Promise<FleetFactsSignal[]> {
  if (serials.length === 0) return [];
  const rows = await prisma.fleetDevice.findMany({ where: { serialNumber: { in: serials } }, orderBy: { serialNumber: 'asc' } });
  return rows.map((row) => ({ serial: row.serialNumber, update: { version: row.factsVersion, facts: businessFacts(rowFacts(row)) } }));
}

// ---- Replicas

async function readReplicas(db: Db, serial: string) {
  const [trips, tasks, deployments, mappings] = await Promise.all([
    db.fleetTrip.findMany({ where: { serialNumber: serial, endedAt: null } }),
    db.fleetFoTask.findMany({ where: { serialNumber: serial, status: { in: ['PENDING', 'ASSIGNED', 'IN_PROGRESS'] } } }),
    db.fleetDeployment.findMany({ where: { serialNumber: serial, endedAt: null } }),
    db.fleetProviderMapping.findMany({ where: { serialNumber: serial, endedAt: null } }),
  ]);
  // The robot's unfinished deliveries, and those its trips name even once finished (the trip shows them).
  const tripDeliveries = trips.flatMap((t) => (t.deliveryId === null ? [] : [t.deliveryId]));
  const deliveries = await db.fleetDelivery.findMany({ where: { serialNumber: serial, OR: [{ endedAt: null }, { deliveryId: { in: tripDeliveries } }] } });
  return {
    trips: trips.map(tripReplica),
    tasks: tasks.map(taskReplica),
    deployments: deployments.map(deploymentReplica),
    mappings: mappings.map(mappingReplica),
    deliveries: deliveries.map(deliveryReplica),
  };
}

type TripRow = NonNullable<Awaited<ReturnType<Prisma['fleetTrip']['findUnique']>>>;
type TaskRow = NonNullable<Awaited<ReturnType<Prisma['fleetFoTask']['findUnique']>>>;
type DeploymentRow = NonNullable<Awaited<ReturnType<Prisma['fleetDeployment']['findUnique']>>>;
type MappingRow = NonNullable<Awaited<ReturnType<Prisma['fleetProviderMapping']['findUnique']>>>;
type DeliveryRow = NonNullable<Awaited<ReturnType<Prisma['fleetDelivery']['findUnique']>>>;

const tripReplica = (r: TripRow): TripReplica => ({
  tripId: r.tripId,
  serial: r.serialNumber,
  tripType: r.tripType as TripReplica['tripType'],
  stage: r.stage as TripReplica['stage'],
  deliveryId: r.deliveryId,
  outcome: r.outcome,
  startedAt: msOrNull(r.startedAt),
  endedAt: msOrNull(r.endedAt),
  occurredAt: r.occurredAt.getTime(),
});
const taskReplica = (r: TaskRow): FoTaskReplica => ({
  taskId: r.taskId,
  serial: r.serialNumber,
  taskType: r.taskType as FoTaskReplica['taskType'],
  status: r.status as FoTaskReplica['status'],
  createdAt: msOrNull(r.createdAt),
  occurredAt: r.occurredAt.getTime(),
});
const deploymentReplica = (r: DeploymentRow): DeploymentReplica => ({
  deploymentId: r.deploymentId,
  serial: r.serialNumber,
  locationId: r.locationId,
  needsPickup: r.needsPickup,
  startedAt: msOrNull(r.startedAt),
  endedAt: msOrNull(r.endedAt),
  occurredAt: r.occurredAt.getTime(),
});
const mappingReplica = (r: MappingRow): ProviderMappingReplica => ({
  provider: r.provider,
  deliveryId: r.deliveryId,
  serial: r.serialNumber,
  providerVehicleId: r.providerVehicleId,
  dropoff: r.dropoffLat === null || r.dropoffLng === null ? null : { lat: r.dropoffLat, lng: r.dropoffLng },
  createdAt: msOrNull(r.createdAt),
  endedAt: msOrNull(r.endedAt),
  occurredAt: r.occurredAt.getTime(),
});

const deliveryReplica = (r: DeliveryRow): DeliveryReplica => ({
  deliveryId: r.deliveryId,
  serial: r.serialNumber,
  status: r.status as DeliveryReplica['status'],
  merchantId: r.merchantId,
  customerId: r.customerId,
  demandId: r.demandId,
  endedAt: msOrNull(r.endedAt),
  occurredAt: r.occurredAt.getTime(),
});

const readTrip = async (db: Db, tripId: string) => {
  const r = await db.fleetTrip.findUnique({ where: { tripId } });
  return r && tripReplica(r);
};
const readTask = async (db: Db, taskId: string) => {
  const r = await db.fleetFoTask.findUnique({ where: { taskId } });
  return r && taskReplica(r);
};
const readDeployment = async (db: Db, deploymentId: string) => {
  const r = await db.fleetDeployment.findUnique({ where: { deploymentId } });
  return r && deploymentReplica(r);
};
const readMapping = async (db: Db, provider: string, deliveryId: string) => {
  const r = await db.fleetProviderMapping.findUnique({ where: { provider_deliveryId: { provider, deliveryId } } });
  return r && mappingReplica(r);
};

const readDelivery = async (db: Db, deliveryId: string) => {
  const r = await db.fleetDelivery.findUnique({ where: { deliveryId } });
  return r && deliveryReplica(r);
};

async function writeTrip(db: Db, t: TripReplica): Promise<void> {
  const data = {
    serialNumber: t.serial,
    tripType: t.tripType,
    stage: t.stage,
    deliveryId: t.deliveryId,
    outcome: t.outcome,
    startedAt: dateOrNull(t.startedAt),
    endedAt: dateOrNull(t.endedAt),
    occurredAt: new Date(t.occurredAt),
  };
  await db.fleetTrip.upsert({ where: { tripId: t.tripId }, create: { tripId: t.tripId, ...data }, update: data });
}

async function writeTask(db: Db, t: FoTaskReplica): Promise<void> {
  const data = { serialNumber: t.serial, taskType: t.taskType, status: t.status, createdAt: dateOrNull(t.createdAt), occurredAt: new Date(t.occurredAt) };
  await db.fleetFoTask.upsert({ where: { taskId: t.taskId }, create: { taskId: t.taskId, ...data }, update: data });
}

async function writeDeployment(db: Db, d: DeploymentReplica): Promise<void> {
  const data = {
    serialNumber: d.serial,
    locationId: d.locationId,
    needsPickup: d.needsPickup,
    startedAt: dateOrNull(d.startedAt),
    endedAt: dateOrNull(d.endedAt),
    occurredAt: new Date(d.occurredAt),
  };
  await db.fleetDeployment.upsert({ where: { deploymentId: d.deploymentId }, create: { deploymentId: d.deploymentId, ...data }, update: data });
}

async function writeMapping(db: Db, m: ProviderMappingReplica): Promise<void> {
  const data = {
    serialNumber: m.serial,
    providerVehicleId: m.providerVehicleId,
    dropoffLat: m.dropoff?.lat ?? null,
    dropoffLng: m.dropoff?.lng ?? null,
    createdAt: dateOrNull(m.createdAt),
    endedAt: dateOrNull(m.endedAt),
    occurredAt: new Date(m.occurredAt),
  };
  await db.fleetProviderMapping.upsert({
    where: { provider_deliveryId: { provider: m.provider, deliveryId: m.deliveryId } },
    create: { provider: m.provider, deliveryId: m.deliveryId, ...data },
    update: data,
  });
}

async function writeDelivery(db: Db, d: DeliveryReplica): Promise<void> {
  const data = {
    serialNumber: d.serial,
    status: d.status,
    merchantId: d.merchantId,
    customerId: d.customerId,
    demandId: d.demandId,
    endedAt: dateOrNull(d.endedAt),
    occurredAt: new Date(d.occurredAt),
  };
  await db.fleetDelivery.upsert({ where: { deliveryId: d.deliveryId }, create: { deliveryId: d.deliveryId, ...data }, update: data });
}

// ---- Partner deliveries

/** The provider mappings the events are about, each with its delivery as the replicas have it now. */
async function deliveriesTouchedBy(prisma: Prisma, events: OperationsEvent[]): Promise<DeliverySignal[]> {
  const mappings = new Map<string, ProviderMappingReplica>();
  const add = (m: MappingRow) => mappings.set(`${m.provider}:${m.deliveryId}`, mappingReplica(m));
  for (const e of events) {
    if (e.type === 'ProviderMapping.Created' || e.type === 'ProviderMapping.Ended') {
      const m = await prisma.fleetProviderMapping.findUnique({ where: { provider_deliveryId: { provider: e.data.provider, deliveryId: e.data.deliveryId } } });
      if (m) add(m);
    } else if (e.type === 'Delivery.StatusChanged') {
      (await prisma.fleetProviderMapping.findMany({ where: { deliveryId: e.data.deliveryId, endedAt: null } })).forEach(add);
    } else if (e.type.startsWith('Trip.')) {
      const trip = await prisma.fleetTrip.findUnique({ where: { tripId: (e.data as { tripId: string }).tripId } });
      if (!trip) continue;
      const linked = await prisma.fleetProviderMapping.findMany({
        where: { endedAt: null, ...(trip.deliveryId ? { deliveryId: trip.deliveryId } : { serialNumber: trip.serialNumber }) },
      });
      linked.forEach(add);
    }
  }
  const signals: DeliverySignal[] = [];
  for (const mapping of mappings.values()) signals.push({ mapping, snapshot: await deliverySnapshot(prisma, mapping) });
  return signals;
}

/** The trip of a delivery (the one carrying its delivery id, else the robot's latest trip that names none) and Deliveries' status of it. */
export async function deliverySnapshot(prisma: Prisma, mapping: ProviderMappingReplica): Promise<DeliverySnapshot> {
  const trip =
    (await prisma.fleetTrip.findFirst({ where: { deliveryId: mapping.deliveryId }, orderBy: { occurredAt: 'desc' } })) ??
    (await prisma.fleetTrip.findFirst({
      where: { serialNumber: mapping.serial, deliveryId: null },
      orderBy: [{ startedAt: { sort: 'desc', nulls: 'last' } }, { occurredAt: 'desc' }],
    }));
  const delivery = await prisma.fleetDelivery.findUnique({ where: { deliveryId: mapping.deliveryId } });
  return {
    stage: (trip?.stage as DeliverySnapshot['stage']) ?? null,
    stageAt: trip?.occurredAt.getTime() ?? null,
    outcome: trip?.outcome ?? null,
    ended: mapping.endedAt !== null,
    deliveryStatus: (delivery?.status as DeliverySnapshot['deliveryStatus']) ?? null,
    deliveryStatusAt: delivery?.occurredAt.getTime() ?? null,
  };
}

/**
 * The robot a provider's vehicle id is mapped to now (the newest live mapping: a vehicle moved to
 * another robot, or to another delivery, follows its latest ProviderMapping.Created), with the
 * delivery as the replicas have it and the robot as its latest heartbeat left it.
 */
export async function readPartnerVehicle(prisma: Prisma, provider: string, providerVehicleId: string): Promise<PartnerVehicleRead | null> {
  const row = await prisma.fleetProviderMapping.findFirst({
    where: { provider, providerVehicleId, endedAt: null, createdAt: { not: null } },
    orderBy: [{ createdAt: 'desc' }, { occurredAt: 'desc' }, { deliveryId: 'asc' }],
  });
  if (row === null) return null;
  const mapping = mappingReplica(row);
  const [snapshot, device] = await Promise.all([
    deliverySnapshot(prisma, mapping),
    prisma.device.findUnique({
      where: { serialNumber: mapping.serial },
      select: { lat: true, lng: true, altitude: true, speedMph: true, locationUpdatedAt: true, lidIsOpen: true, lidUpdatedAt: true, batteryPercent: true, online: true },
    }),
  ]);
  const robot: PartnerRobotState | null = device && {
    location:
      device.lat === null || device.lng === null
        ? null
        : { lat: device.lat, lng: device.lng, altitude: device.altitude, speedMph: device.speedMph, updatedAt: msOrNull(device.locationUpdatedAt) },
    lidOpen: device.lidIsOpen,
    lidUpdatedAt: msOrNull(device.lidUpdatedAt),
    batteryPercent: device.batteryPercent,
    online: device.online,
  };
  return { mapping, snapshot, robot };
}

// ---- What the workflows record

/** The robot workflow's DriveU decision, onto the device and the fleet row (DriveU time keeps order). */
export async function recordDriveuStatus(prisma: Prisma, serial: string, driveu: DriveuState): Promise<void> {
  const at = new Date(Math.floor(driveu.timeMicros / 1000));
  // One transaction: a reader never sees the pilot connected without its session's start.
  await prisma.$transaction(async (tx) => {
    await tx.$executeRaw`
    INSERT INTO devices AS d (serial_number, driveu_streamer_status, pilot_connected, driveu_session_id, driveu_updated_at)
    VALUES (${serial}, ${driveu.streamerStatus}, ${driveu.pilotConnected}, ${driveu.sessionId}, ${at})
    ON CONFLICT (serial_number) DO UPDATE SET driveu_streamer_status = EXCLUDED.driveu_streamer_status,
      pilot_connected = EXCLUDED.pilot_connected, driveu_session_id = EXCLUDED.driveu_session_id,
      driveu_updated_at = EXCLUDED.driveu_updated_at, updated_at = now()
    WHERE d.driveu_updated_at IS NULL OR d.driveu_updated_at <= EXCLUDED.driveu_updated_at`;
    await refreshLocked(tx, serial, {});
    await tx.fleetDevice.update({
      where: { serialNumber: serial },
      data: { pilotSessionStartedAt: dateOrNull(driveu.sessionStartedAt) },
    });
  });
}

export type RobotLocation = { lat: number; lng: number; altitude: number | null; speedMph: number | null };

export async function readRobotLocation(prisma: Prisma, serial: string): Promise<RobotLocation | null> {
  const row = await prisma.device.findUnique({ where: { serialNumber: serial }, select: { lat: true, lng: true, altitude: true, speedMph: true } });
  if (!row || row.lat === null || row.lng === null) return null;
  return { lat: row.lat, lng: row.lng, altitude: row.altitude, speedMph: row.speedMph };
}

/** Events the partner-delivery workflow raises; ids come from the workflow, so a retry adds nothing. */
export async function recordFleetEvents(prisma: Prisma, events: DomainEvent[]): Promise<void> {
  await prisma.domainEvent.createMany({
    data: events.map((e) => ({ id: e.id, type: e.type, serial: e.serial, occurredAt: new Date(e.occurredAt), data: e.data as object })),
    skipDuplicates: true,
  });
}

// ---- Reads for the API (GET /v1/fleet-devices/{serial} and GET /v1/fleet-devices)

// The lowest battery, stored by the heartbeat upsert (NULL for a robot without one or never heard from).
const batteryPercent = Sql.sql`d.battery_percent`;
const withoutPrefix = (prefix: string) => (v: FilterValue) => String(v).replace(new RegExp(`^${prefix}`), '');

function oneOf(field: string, values: readonly string[], prefix = '') {
  return (v: FilterValue) => {
    const value = withoutPrefix(prefix)(v);
    if (!values.includes(value)) throw new FilterError(`${field} takes one of ${values.join(', ')}, found "${v}"`);
    return value;
  };
}

/**
 * A field of the robot's live provider mappings (the `provider_mappings` JSON array): `=` matches a
 * robot with such a mapping (by containment, which the GIN index serves), `!=` one with none, and
 * the orderings one with any mapping that compares so.
 */
function mappingField(key: 'provider' | 'providerVehicleId', toColumn?: (v: FilterValue) => FilterValue): SqlFilterField {
  const holds = (v: FilterValue) => Sql.sql`f.provider_mappings @> jsonb_build_array(jsonb_build_object(${key}::text, ${String(v)}::text))`;
  return {
    type: 'string',
    sql: Sql.sql`f.provider_mappings`,
    toColumn,
    condition: (op, v) =>
      op === '='
        ? holds(v)
        : op === '!='
          ? Sql.sql`NOT ${holds(v)}`
          : Sql.sql`EXISTS (SELECT 1 FROM jsonb_array_elements(f.provider_mappings) m WHERE m->>${key}::text ${sqlOperator(op)} ${String(v)}::text)`,
  };
}

// The trip's delivery ids, once the robot's delivery is the one its trip names.
const tripDelivery = (column: Sql.Sql) => Sql.sql`(CASE WHEN f.delivery_id = f.active_delivery_id THEN ${column} END)`;

/** The filter fields: each a column expression of `fleet_devices f LEFT JOIN devices d`; values only ever bound. */
export function fleetFilterFields(staleAfterSeconds: number): SqlFilterFields {
  const trip = (column: Sql.Sql, prefix: string) => ({ type: 'string' as const, sql: column, toColumn: withoutPrefix(prefix) });
  return {
    serial: { type: 'string', sql: Sql.sql`f.serial_number` },
    status: { type: 'string', sql: Sql.sql`f.status`, toColumn: oneOf('status', fleetStatuses) },
    online: { type: 'bool', sql: Sql.sql`COALESCE(d.online, false)` },
    batteryPercent: { type: 'number', sql: batteryPercent },
    lidOpen: { type: 'bool', sql: Sql.sql`COALESCE(d.lid_is_open, false)` },
    networkType: { type: 'string', sql: Sql.sql`d.network_type`, toColumn: withoutPrefix('NETWORK_TYPE_') },
    pilotConnected: { type: 'bool', sql: Sql.sql`COALESCE(d.pilot_connected, false)` },
    potentiallyStale: {
      type: 'bool',
      sql: Sql.sql`(d.updated_at IS NULL OR d.updated_at < now() - make_interval(secs => ${staleAfterSeconds}))`,
    },
    'activeTrip.tripId': { type: 'string', sql: Sql.sql`f.active_trip_id` },
    'activeTrip.tripType': trip(Sql.sql`f.active_trip_type`, 'TRIP_TYPE_'),
    'activeTrip.stage': trip(Sql.sql`f.active_trip_stage`, 'TRIP_STAGE_'),
    'activeTrip.currentStage': trip(Sql.sql`f.active_trip_stage`, 'TRIP_STAGE_'),
    'activeTrip.deliveryId': { type: 'string', sql: Sql.sql`f.active_delivery_id` },
    'activeTrip.merchantId': { type: 'string', sql: tripDelivery(Sql.sql`f.delivery_merchant_id`) },
    'activeTrip.customerId': { type: 'string', sql: tripDelivery(Sql.sql`f.delivery_customer_id`) },
    'activeTrip.demandId': { type: 'string', sql: tripDelivery(Sql.sql`f.delivery_demand_id`) },
    'activeDelivery.deliveryId': { type: 'string', sql: Sql.sql`f.delivery_id` },
    'activeDelivery.status': { type: 'string', sql: Sql.sql`f.delivery_status`, toColumn: oneOf('activeDelivery.status', deliveryStatuses, 'DELIVERY_STATUS_') },
    'activeDelivery.merchantId': { type: 'string', sql: Sql.sql`f.delivery_merchant_id` },
    'activeDelivery.customerId': { type: 'string', sql: Sql.sql`f.delivery_customer_id` },
    'activeDelivery.demandId': { type: 'string', sql: Sql.sql`f.delivery_demand_id` },
    'providerMappings.provider': mappingField('provider', (v) => String(v).toLowerCase()),
    'providerMappings.providerVehicleId': mappingField('providerVehicleId'),
    'foTasks.count': { type: 'number', sql: Sql.sql`f.fo_task_count` },
    'deployment.deploymentId': { type: 'string', sql: Sql.sql`f.deployment_id` },
    'deployment.locationId': { type: 'string', sql: Sql.sql`f.deployment_location_id` },
  };
}

/** The fleet filter's field types, which the API parses a filter with (they do not depend on the stale threshold). */
export const fleetFilterTypes: FilterFields = filterTypes(fleetFilterFields(0));

type SortType = 'string' | 'number' | 'bool' | 'time';
/** Orders: each a never-NULL sort key, so (key, serial) is a total order a page token can resume from. */
const orderFields: Record<string, { sql: Sql.Sql; type: SortType }> = {
  serial: { sql: Sql.sql`f.serial_number`, type: 'string' },
  status: { sql: Sql.sql`f.status`, type: 'string' },
  batteryPercent: { sql: Sql.sql`COALESCE(${batteryPercent}, -1)`, type: 'number' },
  'foTasks.count': { sql: Sql.sql`f.fo_task_count`, type: 'number' },
  'activeTrip.stage': { sql: Sql.sql`COALESCE(f.active_trip_stage, '')`, type: 'string' },
  online: { sql: Sql.sql`COALESCE(d.online, false)`, type: 'bool' },
  statusChangedAt: { sql: Sql.sql`f.status_changed_at`, type: 'time' },
};

const castTo: Record<SortType, Sql.Sql> = {
  string: Sql.sql`text`,
  number: Sql.sql`float8`,
  bool: Sql.sql`bool`,
  time: Sql.sql`timestamptz`,
};

/** Each order field's sort key type, for the API to check an orderBy and a page token's key. */
export const fleetOrderTypes: Readonly<Record<string, SortType>> = Object.fromEntries(Object.entries(orderFields).map(([name, f]) => [name, f.type]));

export type FleetOrder = { field: string; desc: boolean };
/** Where a page resumes: the last row's sort key and serial. */
export type FleetPageKey = { v: string | number | boolean; s: string };

function pageSql(where: Sql.Sql, order: FleetOrder, after: FleetPageKey | undefined, limit: number): Sql.Sql {
  const { sql: sortKey, type } = orderFields[order.field];
  const dir = order.desc ? Sql.sql`DESC` : Sql.sql`ASC`;
  const cmp = order.desc ? Sql.sql`<` : Sql.sql`>`;
  const resume =
    after === undefined
      ? Sql.sql`TRUE`
      : order.field === 'serial'
        ? Sql.sql`f.serial_number ${cmp} ${after.s}`
        : Sql.sql`(${sortKey}, f.serial_number) ${cmp} (${after.v}::${castTo[type]}, ${after.s}::text)`;
  return Sql.sql`
    SELECT f.serial_number AS serial, ${sortKey} AS key, row_number() OVER (ORDER BY ${sortKey} ${dir}, f.serial_number ${dir}) AS n
    FROM fleet_devices f LEFT JOIN devices d ON d.serial_number = f.serial_number
    WHERE ${where} AND ${resume}
    ORDER BY ${sortKey} ${dir}, f.serial_number ${dir}
    LIMIT ${limit}`;
}

function countSql(where: Sql.Sql): Sql.Sql {
  return Sql.sql`SELECT count(*)::int AS total FROM fleet_devices f LEFT JOIN devices d ON d.serial_number = f.serial_number WHERE ${where}`;
}

/**
 * A listing's page of keys (`pageSize + 1` rows: one more says there is a next page) and its count,
 * the parts of the statement its filter decides (bench/fleet-list-latency.ts times them). A status
 * the fleet does not have throws a FilterError.
 */
export function fleetListStatements(filter: FilterExpr | null, order: FleetOrder, pageSize: number, staleAfterSeconds: number, after?: FleetPageKey) {
  const where = filterToSql(filter, fleetFilterFields(staleAfterSeconds));
  return { page: pageSql(where, order, after, pageSize + 1), count: countSql(where) };
}

export type FleetListStatements = ReturnType<typeof fleetListStatements>;

type LidCycleRow = { cycleId: string; contextId: string | null; status: string; startedAt: Date };
type PageRow = { serial: string; key: unknown; fleet: object | null; device: object | null; batteries: object[]; components: object[]; software: object | null; cycle: object | null };

/**
 * The rows of `page` (serial, sort key, position n) with everything a FleetDevice is made of, and
 * `count`'s total on every row, in one statement of JSON rows (json, not jsonb, and one round trip
 * instead of Prisma's query per relation: docs/performance.md). The page joins the total, not the
 * other way round, so an empty page keeps its count. Each row's fleet row and device are
 * subqueries, not joins: joined, PostgreSQL hashed the page and scanned all of fleet_devices.
 */
function fleetDevicesSql(page: Sql.Sql, count: Sql.Sql): Sql.Sql {
  return Sql.sql`
    WITH page AS (${page}), total AS (${count})
    SELECT t.total, p.serial, p.key,
      (SELECT to_json(f) FROM fleet_devices f WHERE f.serial_number = p.serial) AS fleet,
      (SELECT to_json(d) FROM devices d WHERE d.serial_number = p.serial) AS device,
      COALESCE((SELECT json_agg(b) FROM device_batteries b WHERE b.serial_number = p.serial), '[]'::json) AS batteries,
      COALESCE((SELECT json_agg(c) FROM device_components c WHERE c.serial_number = p.serial), '[]'::json) AS components,
      (SELECT to_json(s) FROM device_software s WHERE s.serial_number = p.serial) AS software,
      (SELECT to_json(l) FROM lid_cycles l WHERE l.serial_number = p.serial AND l.status = 'INIT' ORDER BY l.started_at DESC LIMIT 1) AS cycle
    FROM total t
    LEFT JOIN page p ON true
    ORDER BY p.n`;
}

const noCount = Sql.sql`SELECT NULL::int AS total`;

/** What fleetDevicesSql returns: the page's rows with the total, or one row of the total alone for an empty page. */
type CountedRow = Omit<PageRow, 'serial'> & { serial: string | null; total: number | null };
const isPageRow = (r: CountedRow): r is CountedRow & PageRow => r.serial !== null;

/** A page's rows as FleetDevices, with each row's sort key (`device` is null for a serial with no fleet row), and `count`'s total. */
async function readPage(prisma: Prisma, page: Sql.Sql, staleAfterMs: number, { count = noCount, live }: { count?: Sql.Sql; live?: Map<string, LiveDevice> } = {}) {
  const rows = await prisma.$queryRaw<CountedRow[]>(fleetDevicesSql(page, count));
  const now = Date.now();
  return {
    totalSize: rows[0]?.total ?? 0,
    page: rows.filter(isPageRow).map((r) => ({
      serial: r.serial,
      key: r.key instanceof Date ? r.key.toISOString() : (r.key as string | number | boolean),
      device: r.fleet ? toFleetDeviceFromRows(r, staleAfterMs, now, live?.get(r.serial)) : null,
    })),
  };
}

function toFleetDeviceFromRows(r: PageRow, staleAfterMs: number, now: number, fresh: LiveDevice | undefined): FleetDevice {
  const row = rowFromJson<FleetDeviceRow>(r.fleet as Record<string, unknown>);
  const projection: DeviceProjection | null = r.device
    ? {
        ...rowFromJson<Omit<DeviceProjection, 'batteries' | 'components' | 'software'>>(r.device as Record<string, unknown>),
        batteries: r.batteries.map((b) => rowFromJson(b as Record<string, unknown>)),
        components: r.components.map((c) => rowFromJson(c as Record<string, unknown>)),
        software: r.software ? rowFromJson(r.software as Record<string, unknown>) : null,
      }
    : null;
  const cycle = r.cycle ? rowFromJson<LidCycleRow>(r.cycle as Record<string, unknown>) : null;
  const activeLidCycle: LidCycleSummary | null = cycle && { cycleId: cycle.cycleId, contextId: cycle.contextId, status: cycle.status, startedAt: cycle.startedAt.getTime() };
  const device = fresh
    ? mergeLiveWithProjection(robotStateToDevice(fresh.state), fresh.state.lastHeartbeatAt, projection)
    : projection
      ? deviceFromProjection(projection)
      : deviceNeverSeen(r.serial, row.createdAt.getTime());
  const projectedAt = projection?.updatedAt.getTime() ?? null;
  const deviceSyncedAt = fresh ? Math.max(projectedAt ?? 0, fresh.state.lastSeenAt ?? 0, fresh.readAt) : projectedAt;
  return toFleetDevice(toFleetRow(row), { device, deviceSyncedAt, activeLidCycle, now, staleAfterMs });
}

/** One robot's FleetDevice, or undefined when it has no fleet row. */
export async function readFleetDevice(prisma: Prisma, serial: string, staleAfterMs: number, live?: LiveDevice): Promise<FleetDevice | undefined> {
  const { page } = await readPage(prisma, Sql.sql`SELECT ${serial}::text AS serial, NULL::text AS key, 1 AS n`, staleAfterMs, { live: live && new Map([[serial, live]]) });
  return page[0]?.device ?? undefined;
}

/** A listing's page as FleetDevices, with each row's sort key, and the count of every match. */
export function listFleetDevices(prisma: Prisma, statements: FleetListStatements, staleAfterMs: number) {
  return readPage(prisma, statements.page, staleAfterMs, { count: statements.count });
}

export type LiveDevice = { state: RobotState; readAt: number };

export async function hasFleetRow(prisma: Prisma, serial: string): Promise<boolean> {
  return (await prisma.fleetDevice.count({ where: { serialNumber: serial } })) > 0;
}
