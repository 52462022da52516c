import { Prisma as Sql } from '../generated/prisma/client';
import { rowFromJson, type Prisma } from '../infra/prisma';
import type { Heartbeat } from '../domain/heartbeat';
import type { DeviceProjection } from '../domain/device-projection';
import type { DomainEvent } from '../domain/events';
import type { FilterExpr, FilterFields } from '../domain/filter';
import type { SilentRobot } from '../domain/silence';
import { takeIn, type IntakeResult, type IntakeRules, type RobotIntake } from '../domain/heartbeat-intake';
import type { DeviceParts, UpdatedField } from '../domain/device-parts';
import { filterToSql, filterTypes, type SqlFilterFields } from './filter-sql';
import { refreshFleetRow } from './fleet';
import { queueForRobots } from './robot-inbox';

/**
 * The device projection (seed 001 `devices`, `device_batteries`, `device_components`).
 * The ingest worker writes telemetry here in batches; the robot workflow writes its decisions; the API reads it back.
 * Every write keeps the newest state: an older heartbeat never overwrites a newer one.
 */

export type HeartbeatRules = IntakeRules;

/** What a batch did: the heartbeats on their robots' clock lines, and what reached the robot inbox. */
export type StoredHeartbeats = Pick<IntakeResult, 'placed' | 'newest' | 'updatedFields' | 'forwards' | 'corrected' | 'epochs'>;

/** A robot's newest heartbeat of a batch, its Device as stored, and the fields the batch changed. */
export type StoredUpdate = { heartbeat: Heartbeat; device: DeviceProjection; updatedFields: UpdatedField[] };

/** Channel of the notification sent with every batch that stored newer heartbeats: a JSON array of serials. */
export const DEVICE_UPDATES_CHANNEL = 'device_updates';
// PostgreSQL's NOTIFY payload limit is 8000 bytes.
const NOTIFY_BYTES = 7000;

/**
 * Takes a batch of heartbeats (in arrival order) into the projection, in one transaction: the
 * rows of the batch's robots are locked and read, the intake decided from them
 * (domain/heartbeat-intake.ts), and the newest heartbeat of each robot written with what is kept of
 * it; with `inbox`, the heartbeats the robot workflows must see go into the robot inbox in the same
 * transaction, so a heartbeat is queued once whichever ingest worker takes it.
 */
export async function storeHeartbeats(
  prisma: Prisma,
  heartbeats: Heartbeat[],
  rules: HeartbeatRules,
  opts: {
    inbox: boolean;
    /** Called in the transaction, after the writes: what must be out before the batch commits (Device.HeartbeatReceived). */
    beforeCommit?: (updates: StoredUpdate[]) => Promise<void>;
  },
): Promise<StoredHeartbeats> {
  if (heartbeats.length === 0) return { placed: [], newest: new Map(), updatedFields: new Map(), forwards: [], corrected: 0, epochs: [] };
  const serials = [...new Set(heartbeats.map((h) => h.serial))].sort();
  return prisma.$transaction(
    async (tx) => {
      // A new robot's row is made first, so that it is locked like the others.
      await tx.$executeRaw`INSERT INTO devices (serial_number) SELECT unnest(${serials}::text[]) ON CONFLICT DO NOTHING`;
      const intake = takeIn(await lockIntake(tx, serials), heartbeats, rules);
      await writeIntake(tx, intake);
      if (opts.inbox && intake.forwards.length > 0) await queueForRobots(tx, intake.forwards);
      const updated = [...intake.newest.keys()];
      for (const chunk of serialChunks(updated)) await tx.$executeRaw`SELECT pg_notify(${DEVICE_UPDATES_CHANNEL}, ${chunk})`;
      if (opts.beforeCommit && updated.length > 0) {
        const devices = await tx.device.findMany({ where: { serialNumber: { in: updated } }, include: { batteries: true, components: true, software: true } });
        const bySerial = new Map(devices.map((d) => [d.serialNumber, d]));
        await opts.beforeCommit(updated.map((serial) => ({ heartbeat: intake.newest.get(serial)!, device: bySerial.get(serial)!, updatedFields: intake.updatedFields.get(serial)! })));
      }
      return intake;
    },
    { timeout: 60_000, maxWait: 60_000 },
  );
}

/** The ingest worker's plain write, for tests and benchmarks that need no robot inbox. */
export async function writeHeartbeats(prisma: Prisma, heartbeats: Heartbeat[], rules: HeartbeatRules = defaultHeartbeatRules): Promise<void> {
  await storeHeartbeats(prisma, heartbeats, rules, { inbox: false });
}

export const defaultHeartbeatRules: HeartbeatRules = {
  clock: { toleranceMs: 30_000, resetAfterMs: 10_000 },
  forward: { intervalMs: 300_000, silenceMs: 30_000 },
};

type Tx = Parameters<Parameters<Prisma['$transaction']>[0]>[0];

type IntakeRow = {
  serial_number: string;
  clock_offset_ms: bigint;
  newest_at: number | null;
  newest_received_at: number | null;
  behind_since: number | null;
  behind_at: bigint | null;
  last_seen_at: number | null;
  forwarded_fingerprint: string | null;
  forwarded_at: number | null;
  newest_parts: DeviceParts | null;
};

/** JSON arrays of serials, each small enough for one notification. */
function serialChunks(serials: string[]): string[] {
  const chunks: string[] = [];
  let chunk: string[] = [];
  for (const serial of serials) {
    if (chunk.length > 0 && JSON.stringify([...chunk, serial]).length > NOTIFY_BYTES) {
      chunks.push(JSON.stringify(chunk));
      chunk = [];
    }
    chunk.push(serial);
  }
  if (chunk.length > 0) chunks.push(JSON.stringify(chunk));
  return chunks;
}

/** In serial order, so that two ingest workers locking overlapping robots never deadlock. */
async function lockIntake(tx: Tx, serials: string[]): Promise<Map<string, RobotIntake>> {
  const ms = (column: string) => Sql.raw(`(EXTRACT(EPOCH FROM ${column}) * 1000)::float8`);
  const rows = await tx.$queryRaw<IntakeRow[]>`
    SELECT serial_number, clock_offset_ms, ${ms('last_heartbeat_at')} AS newest_at, ${ms('newest_received_at')} AS newest_received_at,
      ${ms('clock_behind_received_at')} AS behind_since, clock_behind_time_ms AS behind_at, ${ms('last_seen_at')} AS last_seen_at, forwarded_fingerprint, ${ms('forwarded_at')} AS forwarded_at,
      newest_parts
    FROM devices WHERE serial_number = ANY(${serials}::text[]) ORDER BY serial_number FOR UPDATE`;
  return new Map(
    rows.map((r) => [
      r.serial_number,
      {
        clock: {
          offsetMs: Number(r.clock_offset_ms),
          newestAt: r.newest_at,
          newestReceivedAt: r.newest_received_at,
          behind: r.behind_since === null || r.behind_at === null ? null : { since: r.behind_since, at: Number(r.behind_at) },
        },
        lastSeenAt: r.last_seen_at,
        forwarded: r.forwarded_fingerprint === null || r.forwarded_at === null ? null : { fingerprint: r.forwarded_fingerprint, at: r.forwarded_at },
        parts: r.newest_parts,
      },
    ]),
  );
}

/**
 * One row per robot of the batch. Telemetry comes from the robot's new newest heartbeat and is
 * null when the batch brought none, which the upsert reads as "keep" (`COALESCE`); what is kept of
 * the robot for the intake is always written.
 */
async function writeIntake(tx: Tx, intake: IntakeResult): Promise<void> {
  const robots = [...intake.robots.entries()].map(([serial, kept]) => ({ serial, kept, hb: intake.newest.get(serial) ?? null }));
  const col = <T>(f: (r: (typeof robots)[number]) => T) => robots.map(f);
  const loc = <T>(f: (l: NonNullable<Heartbeat['location']>) => T) => col((r) => (r.hb?.location ? (f(r.hb.location) ?? null) : null));
  await tx.$executeRaw`
    UPDATE devices AS d SET
      lat = COALESCE(u.lat, d.lat), lng = COALESCE(u.lng, d.lng), heading = COALESCE(u.heading, d.heading),
      horizontal_accuracy = COALESCE(u.acc, d.horizontal_accuracy), altitude = COALESCE(u.alt, d.altitude),
      speed_mph = COALESCE(u.speed, d.speed_mph),
      location_updated_at = CASE WHEN u.lat IS NULL THEN d.location_updated_at ELSE ${fromMs('t')} END,
      network_type = COALESCE(u.net, d.network_type), signal_strength = COALESCE(u.sig, d.signal_strength),
      lid_is_open = COALESCE(u.lid, d.lid_is_open),
      lid_updated_at = CASE WHEN u.lid IS NULL OR u.lid = d.lid_is_open AND d.lid_updated_at IS NOT NULL THEN d.lid_updated_at ELSE ${fromMs('t')} END,
      last_heartbeat_at = COALESCE(${fromMs('t')}, d.last_heartbeat_at),
      last_seen_at = GREATEST(d.last_seen_at, ${fromMs('seen')}),
      -- battery_percent: the lowest of the heartbeat's batteries and of the stored ones it does not
      -- mention (mentioned is a bit per battery index), i.e. the lowest of device_batteries once this
      -- transaction is done; a heartbeat without batteries keeps the stored value.
      battery_percent = COALESCE(CASE WHEN u.charge IS NOT NULL THEN LEAST(u.charge, (SELECT min(b.charge_percent) FROM device_batteries b
        WHERE b.serial_number = u.s AND (u.mentioned >> b.battery_index) & 1 = 0)) END, d.battery_percent),
      clock_offset_ms = u.offset_ms, newest_received_at = ${fromMs('newest_received')},
      clock_behind_received_at = ${fromMs('behind_since')}, clock_behind_time_ms = u.behind_at, forwarded_fingerprint = u.fingerprint, forwarded_at = ${fromMs('forwarded')},
      newest_parts = COALESCE(u.parts, d.newest_parts),
      updated_fields = CASE WHEN u.t IS NULL THEN d.updated_fields ELSE string_to_array(u.fields, ',') END,
      updated_at = CASE WHEN u.t IS NULL THEN d.updated_at ELSE now() END
    FROM unnest(${col((r) => r.serial)}::text[], ${loc((l) => l.latitude)}::float8[], ${loc((l) => l.longitude)}::float8[],
      ${loc((l) => l.heading)}::float8[], ${loc((l) => l.horizontalAccuracy)}::float8[], ${loc((l) => l.altitude)}::float8[],
      ${loc((l) => l.speedMph)}::float8[], ${col((r) => r.hb?.network?.type ?? null)}::text[],
      ${col((r) => r.hb?.network?.signalStrength ?? null)}::int[], ${col((r) => r.hb?.lidOpen ?? null)}::bool[],
      ${col((r) => r.hb?.timestamp ?? null)}::bigint[], ${col((r) => r.kept.lastSeenAt)}::bigint[],
      ${col((r) => (r.hb ? lowestCharge(r.hb) : null))}::int[], ${col((r) => (r.hb ? batteryIndexBits(r.hb) : 0))}::int[],
      ${col((r) => r.kept.clock.offsetMs)}::bigint[], ${col((r) => r.kept.clock.newestReceivedAt)}::bigint[],
      ${col((r) => r.kept.clock.behind?.since ?? null)}::bigint[], ${col((r) => r.kept.clock.behind?.at ?? null)}::bigint[], ${col((r) => r.kept.forwarded?.fingerprint ?? null)}::text[],
      ${col((r) => r.kept.forwarded?.at ?? null)}::bigint[],
      ${col((r) => (r.hb ? JSON.stringify(r.kept.parts) : null))}::jsonb[], ${col((r) => (r.hb ? (intake.updatedFields.get(r.serial) ?? []).join(',') : null))}::text[])
      AS u(s, lat, lng, heading, acc, alt, speed, net, sig, lid, t, seen, charge, mentioned, offset_ms, newest_received, behind_since, behind_at, fingerprint, forwarded, parts, fields)
    WHERE d.serial_number = u.s`;
  const newest = [...intake.newest.values()];
  if (newest.length === 0) return;
  await upsertBatteries(tx, newest);
  await upsertComponents(tx, newest);
}

/** A column of epoch milliseconds as a timestamp: numbers, because Prisma's Date parameters cost the ingest CPU per row. */
const fromMs = (column: string) => Sql.raw(`(timestamptz 'epoch' + ${column} * interval '1 millisecond')`);

const lowestCharge = (h: Heartbeat) => (h.batteries.length === 0 ? null : Math.min(...h.batteries.map((b) => b.chargePercent)));
// Battery indexes are 0 to 15 (domain/heartbeat.ts).
const batteryIndexBits = (h: Heartbeat) => h.batteries.reduce((bits, b) => bits | (1 << b.batteryIndex), 0);

function upsertBatteries(prisma: Tx, rows: Heartbeat[]) {
  const b = rows.flatMap((h) => h.batteries.map((x) => ({ ...x, serial: h.serial, t: h.timestamp })));
  return prisma.$executeRaw`
    INSERT INTO device_batteries AS b (serial_number, battery_index, charge_percent, voltage, current, temperature, is_charging, updated_at)
    SELECT s, i, charge, v, a, temp, charging, ${fromMs('t')}
    FROM unnest(${b.map((x) => x.serial)}::text[], ${b.map((x) => x.batteryIndex)}::int[],
      ${b.map((x) => x.chargePercent)}::int[], ${b.map((x) => x.voltage ?? null)}::float8[],
      ${b.map((x) => x.current ?? null)}::float8[], ${b.map((x) => x.temperature ?? null)}::float8[],
      ${b.map((x) => x.isCharging ?? null)}::bool[], ${b.map((x) => x.t)}::bigint[]) AS u(s, i, charge, v, a, temp, charging, t)
    ON CONFLICT (serial_number, battery_index) DO UPDATE SET
      charge_percent = EXCLUDED.charge_percent, voltage = EXCLUDED.voltage, current = EXCLUDED.current,
      temperature = EXCLUDED.temperature, is_charging = EXCLUDED.is_charging, updated_at = EXCLUDED.updated_at
    WHERE b.updated_at IS NULL OR b.updated_at < EXCLUDED.updated_at`;
}

/**
 * A component's row is written only when its code changes, so `updated_at` is when the code took
 * its value: what the robot workflow's live view says (`since`) and what `lid_updated_at` is for
 * the lid. The stored code is read by a subquery per row on purpose (as NOT EXISTS, the filter cost
 * more than the writes it saved). A changed code is taken only from the robot's newest heartbeat
 * (the devices update, earlier in the same transaction, has just made it `last_heartbeat_at`).
 */
function upsertComponents(prisma: Tx, rows: Heartbeat[]) {
  const c = rows.flatMap((h) =>
    Object.entries(h.components).map(([name, code]) => ({ serial: h.serial, name, code, t: h.timestamp })),
  );
  return prisma.$executeRaw`
    INSERT INTO device_components AS c (serial_number, component_name, status_code, updated_at)
    SELECT s, name, code, ${fromMs('t')}
    FROM unnest(${c.map((x) => x.serial)}::text[], ${c.map((x) => x.name)}::text[],
      ${c.map((x) => x.code)}::text[], ${c.map((x) => x.t)}::bigint[]) AS u(s, name, code, t)
    WHERE u.code IS DISTINCT FROM (SELECT o.status_code FROM device_components o WHERE o.serial_number = u.s AND o.component_name = u.name)
    ON CONFLICT (serial_number, component_name) DO UPDATE SET
      status_code = EXCLUDED.status_code, updated_at = EXCLUDED.updated_at
    WHERE EXCLUDED.updated_at >= (SELECT d.last_heartbeat_at FROM devices d WHERE d.serial_number = c.serial_number)`;
}

/** The robot workflow's decisions: connectivity and the events it raised, in one transaction. */
export async function recordRobotChanges(
  prisma: Prisma,
  change: { serial: string; online: boolean; onlineChangedAt: number | null; events: DomainEvent[] },
): Promise<void> {
  const changedAt = change.onlineChangedAt === null ? null : new Date(change.onlineChangedAt);
  await prisma.$transaction([
    prisma.$executeRaw`
      INSERT INTO devices AS d (serial_number, online, connectivity_updated_at)
      VALUES (${change.serial}, ${change.online}, ${changedAt}::timestamptz)
      ON CONFLICT (serial_number) DO UPDATE SET online = EXCLUDED.online,
        connectivity_updated_at = EXCLUDED.connectivity_updated_at, updated_at = now()
      WHERE d.connectivity_updated_at IS NULL OR d.connectivity_updated_at <= EXCLUDED.connectivity_updated_at`,
    prisma.domainEvent.createMany({
      data: change.events.map((e) => ({
        id: e.id,
        type: e.type,
        serial: e.serial,
        occurredAt: new Date(e.occurredAt),
        data: e.data as object,
      })),
      skipDuplicates: true,
    }),
  ]);
  // Online is one input of the fleet view's status; the fleet row is recomputed under its own lock.
  await refreshFleetRow(prisma, change.serial);
}

/** The silence sweeper's query (ingest/silence-sweeper.ts): robots held online, last seen in [heardSince, silentSince). */
export async function findSilentRobots(prisma: Prisma, silentSince: Date, heardSince: Date): Promise<SilentRobot[]> {
  // No index on last_seen_at, on purpose: every heartbeat writes it, and an index would cost each
  // of those writes its in-place (HOT) update. The online index narrows this to the live fleet.
  const rows = await prisma.$queryRaw<{ serial_number: string; last_seen_at: Date }[]>`
    SELECT serial_number, last_seen_at FROM devices
    WHERE online AND last_seen_at < ${silentSince} AND last_seen_at >= ${heardSince}
    ORDER BY last_seen_at`;
  return rows.map((r) => ({ serial: r.serial_number, lastSeenAt: r.last_seen_at.getTime() }));
}

export async function readLastSeen(prisma: Prisma, serial: string): Promise<number | null> {
  const row = await prisma.device.findUnique({ where: { serialNumber: serial }, select: { lastSeenAt: true } });
  return row?.lastSeenAt?.getTime() ?? null;
}

// ---- Reads for the API (GET /v1/devices/{serial} and GET /v1/devices)

export const deviceFilterFields: SqlFilterFields = {
  serial: { type: 'string', sql: Sql.sql`d.serial_number` },
  online: { type: 'bool', sql: Sql.sql`d.online` },
  lidOpen: { type: 'bool', sql: Sql.sql`d.lid_is_open` },
  // The lowest battery, stored by the heartbeat upsert.
  batteryPercent: { type: 'number', sql: Sql.sql`d.battery_percent` },
  // The API shows NETWORK_TYPE_CELLULAR, the projection stores CELLULAR: accept both.
  networkType: { type: 'string', sql: Sql.sql`d.network_type`, toColumn: (v) => String(v).replace(/^NETWORK_TYPE_/, '') },
};

/** The device list's filter fields and their types, which the API parses a filter with. */
export const deviceFilterTypes: FilterFields = filterTypes(deviceFilterFields);

const withParts = { batteries: true, components: true, software: true } as const;

/** One robot's projection with its batteries, components and software; null for a robot never heard of. */
export function readDeviceProjection(prisma: Prisma, serial: string): Promise<DeviceProjection | null> {
  return prisma.device.findUnique({ where: { serialNumber: serial }, include: withParts });
}

/** A robot's projection with what its device updates are made of: the fields its last heartbeat batch changed and its parts. */
export type StoredDevice = { projection: DeviceProjection; updatedFields: UpdatedField[]; parts: DeviceParts | null };

type DeviceJsonRow = { device: Record<string, unknown>; batteries: Record<string, unknown>[]; components: Record<string, unknown>[]; software: Record<string, unknown> | null };

/**
 * The robots of `serials` the projection holds (GET /v1/devices:batchGet, device updates), in one
 * statement of JSON rows as the fleet list reads its page (store/fleet.ts), in no particular order.
 */
export async function readDevices(prisma: Prisma, serials: readonly string[]): Promise<StoredDevice[]> {
  if (serials.length === 0) return [];
  const rows = await prisma.$queryRaw<DeviceJsonRow[]>`
    SELECT to_json(d) AS device,
      COALESCE((SELECT json_agg(b) FROM device_batteries b WHERE b.serial_number = d.serial_number), '[]'::json) AS batteries,
      COALESCE((SELECT json_agg(c) FROM device_components c WHERE c.serial_number = d.serial_number), '[]'::json) AS components,
      (SELECT to_json(s) FROM device_software s WHERE s.serial_number = d.serial_number) AS software
    FROM devices d WHERE d.serial_number = ANY(${[...serials]}::text[])`;
  return rows.map((r) => {
    const device = rowFromJson<DeviceProjection & { updatedFields: UpdatedField[] | null; newestParts: DeviceParts | null }>(r.device);
    return {
      projection: {
        ...device,
        batteries: r.batteries.map((b) => rowFromJson(b)),
        components: r.components.map((c) => rowFromJson(c)),
        software: r.software ? rowFromJson(r.software) : null,
      },
      updatedFields: device.updatedFields ?? [],
      parts: device.newestParts,
    };
  });
}

/**
 * The robots whose row changed after `since` (heartbeat batches set updated_at to their
 * transaction's start), and the database's clock now: how a device update feed catches up on
 * notifications it missed. Without `since`, only the clock.
 */
export async function findDevicesUpdatedSince(prisma: Prisma, since: Date | null): Promise<{ serials: string[]; now: Date }> {
  const [row] = await prisma.$queryRaw<{ now: Date; serials: string[] }[]>`
    SELECT now() AS now, COALESCE(array_agg(serial_number), '{}') AS serials FROM devices WHERE updated_at > ${since}::timestamptz`;
  return row;
}

/** Whether the projection has a row for the robot. */
export async function isInProjection(prisma: Prisma, serial: string): Promise<boolean> {
  return (await prisma.device.count({ where: { serialNumber: serial } })) > 0;
}

/**
 * A page of the device list in serial order: up to `pageSize + 1` matching serials after `after`
 * (one more than the page says there is a next one), the projections of the page's rows, and
 * the count of every match.
 */
export async function listDevices(
  prisma: Prisma,
  filter: FilterExpr | null,
  after: string | undefined,
  pageSize: number,
): Promise<{ serials: string[]; rows: DeviceProjection[]; totalSize: number }> {
  const where = filterToSql(filter, deviceFilterFields);
  const pageWithRows = async () => {
    const serials = await pageOfSerials(prisma, where, after, pageSize + 1);
    const rows = await prisma.device.findMany({ where: { serialNumber: { in: serials.slice(0, pageSize) } }, include: withParts });
    return { serials, rows };
  };
  // The count visits every match, the page only its rows: the count runs beside the page and its rows' read.
  const [{ serials, rows }, totalSize] = await Promise.all([pageWithRows(), countDevices(prisma, where)]);
  return { serials, rows, totalSize };
}

async function pageOfSerials(prisma: Prisma, where: Sql.Sql, after: string | undefined, limit: number): Promise<string[]> {
  const rows = await prisma.$queryRaw<{ serial: string }[]>(pageSql(where, after, limit));
  return rows.map((r) => r.serial);
}

function pageSql(where: Sql.Sql, after: string | undefined, limit: number): Sql.Sql {
  const afterSql = after === undefined ? Sql.sql`TRUE` : Sql.sql`d.serial_number > ${after}`;
  return Sql.sql`
    SELECT d.serial_number AS serial FROM devices d
    WHERE ${where} AND ${afterSql}
    ORDER BY d.serial_number LIMIT ${limit}`;
}

async function countDevices(prisma: Prisma, where: Sql.Sql): Promise<number> {
  const [row] = await prisma.$queryRaw<{ total: number }[]>(countSql(where));
  return row.total;
}

const countSql = (where: Sql.Sql) => Sql.sql`SELECT count(*)::int AS total FROM devices d WHERE ${where}`;

/** The first page's and the count's statements of a listing, as listDevices runs them (bench/fleet-list-latency.ts explains them). */
export function deviceListStatements(filter: FilterExpr | null, pageSize: number) {
  const where = filterToSql(filter, deviceFilterFields);
  return { page: pageSql(where, undefined, pageSize + 1), count: countSql(where) };
}
