import { Prisma as Sql } from '../generated/prisma/client';
import type { Prisma } from '../infra/prisma';
import type { DomainEvent } from '../domain/events';
import type { DriveuState } from '../domain/driveu';
import {
  applyDeploymentCreated,
  applyDeploymentEnded,
  applyDeploymentPickupRequested,
  applyFoTaskCreated,
  applyFoTaskStatusChanged,
  applyProviderMappingCreated,
  applyProviderMappingEnded,
  applyTripCompleted,
  applyTripCreated,
  applyTripStageChanged,
  businessFacts,
  fleetRowFacts,
  type DeploymentReplica,
  type FleetRowFacts,
  type FoTaskReplica,
  type ProviderMappingReplica,
  type TripReplica,
} from '../domain/fleet-facts';
import type { FleetRow } from '../domain/fleet-device';
import { computeFleetStatus, type FleetFactsUpdate, type FleetStatus } from '../domain/fleet-status';
import type { OperationsEvent, OperationsEventOutcome } from '../domain/operations-events';
import type { DeliverySnapshot } from '../domain/partner-delivery';

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
  return { trips: trips.map(tripReplica), tasks: tasks.map(taskReplica), deployments: deployments.map(deploymentReplica), mappings: mappings.map(mappingReplica) };
}

type TripRow = NonNullable<Awaited<ReturnType<Prisma['fleetTrip']['findUnique']>>>;
type TaskRow = NonNullable<Awaited<ReturnType<Prisma['fleetFoTask']['findUnique']>>>;
type DeploymentRow = NonNullable<Awaited<ReturnType<Prisma['fleetDeployment']['findUnique']>>>;
type MappingRow = NonNullable<Awaited<ReturnType<Prisma['fleetProviderMapping']['findUnique']>>>;

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

// ---- Partner deliveries

/** The provider mappings the events are about, each with its delivery as the replicas have it now. */
async function deliveriesTouchedBy(prisma: Prisma, events: OperationsEvent[]): Promise<DeliverySignal[]> {
  const mappings = new Map<string, ProviderMappingReplica>();
  const add = (m: MappingRow) => mappings.set(`${m.provider}:${m.deliveryId}`, mappingReplica(m));
  for (const e of events) {
    if (e.type === 'ProviderMapping.Created' || e.type === 'ProviderMapping.Ended') {
      const m = await prisma.fleetProviderMapping.findUnique({ where: { provider_deliveryId: { provider: e.data.provider, deliveryId: e.data.deliveryId } } });
      if (m) add(m);
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

/** The trip of a delivery: the one carrying its delivery id, else the robot's latest trip that names none. */
export async function deliverySnapshot(prisma: Prisma, mapping: ProviderMappingReplica): Promise<DeliverySnapshot> {
  const trip =
    (await prisma.fleetTrip.findFirst({ where: { deliveryId: mapping.deliveryId }, orderBy: { occurredAt: 'desc' } })) ??
    (await prisma.fleetTrip.findFirst({
      where: { serialNumber: mapping.serial, deliveryId: null },
      orderBy: [{ startedAt: { sort: 'desc', nulls: 'last' } }, { occurredAt: 'desc' }],
    }));
  return {
    stage: (trip?.stage as DeliverySnapshot['stage']) ?? null,
    stageAt: trip?.occurredAt.getTime() ?? null,
    outcome: trip?.outcome ?? null,
    ended: mapping.endedAt !== null,
  };
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
