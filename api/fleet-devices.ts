import { createHash } from 'node:crypto';
import type { OpenAPIRegistry, ResponseConfig } from '@asteasolutions/zod-to-openapi';
import { Router } from 'express';
import { isGrpcServiceError, ServiceError, WorkflowNotFoundError } from '@temporalio/client';
import { z } from 'zod';
import { Prisma } from '../generated/prisma/client';
import { rowFromJson, type Prisma as PrismaClient } from '../infra/prisma';
import { deviceFromProjection, mergeLiveWithProjection, type DeviceProjection } from '../domain/device-projection';
import { deviceNeverSeen, fleetDeviceSchema, toFleetDevice, type FleetDevice, type LidCycleSummary } from '../domain/fleet-device';
import { fleetStatuses } from '../domain/fleet-status';
import { FilterError, parseFilter, type FilterValue } from '../domain/filter';
import { serialSchema } from '../domain/heartbeat';
import { robotStateToDevice, type RobotState } from '../domain/robot-state';
import { workflowIds } from '../temporal.config';
import { fleetFactsQuery, robotStateQuery } from '../workflows/robot';
import { readFactsUpdates, refreshFleetRow, toFleetRow } from '../store/fleet';
import { filterToSql, filterTypes, type SqlFilterFields } from '../store/filter-sql';
import { requireScope } from './auth';
import { invalidArgument, notFound, parseInput, unavailable } from './errors';
import { signalFleetFacts, type FleetRouteDeps } from './operations-events';
import { decodePageToken, encodePageToken } from './page-token';
import { errorSchema } from './schemas';

/**
 * The fleet view for Mission Control (seed 001 FleetDeviceService): GET one, or list with the
 * contract's filter language, an order, keyset page tokens and totalSize. Business facts and status
 * come from `fleet_devices`; the device part is joined from the projection at read time.
 */

const FRESH_QUERY_TIMEOUT_MS = 5000;
const GRPC_NOT_FOUND = 5;
const MAX_PAGE_SIZE = 500;

// The lowest battery, stored by the heartbeat upsert (NULL for a robot without one or never heard from).
const batteryPercent = Prisma.sql`d.battery_percent`;
const withoutPrefix = (prefix: string) => (v: FilterValue) => String(v).replace(new RegExp(`^${prefix}`), '');

function oneOf(field: string, values: readonly string[], prefix = '') {
  return (v: FilterValue) => {
    const value = withoutPrefix(prefix)(v);
    if (!values.includes(value)) throw new FilterError(`${field} takes one of ${values.join(', ')}, found "${v}"`);
    return value;
  };
}

/** The filter fields: each a column expression of `fleet_devices f LEFT JOIN devices d`; values only ever bound. */
export function fleetFilterFields(staleAfterSeconds: number): SqlFilterFields {
  const trip = (column: Prisma.Sql, prefix: string) => ({ type: 'string' as const, sql: column, toColumn: withoutPrefix(prefix) });
  return {
    serial: { type: 'string', sql: Prisma.sql`f.serial_number` },
    status: { type: 'string', sql: Prisma.sql`f.status`, toColumn: oneOf('status', fleetStatuses) },
    online: { type: 'bool', sql: Prisma.sql`COALESCE(d.online, false)` },
    batteryPercent: { type: 'number', sql: batteryPercent },
    lidOpen: { type: 'bool', sql: Prisma.sql`COALESCE(d.lid_is_open, false)` },
    networkType: { type: 'string', sql: Prisma.sql`d.network_type`, toColumn: withoutPrefix('NETWORK_TYPE_') },
    pilotConnected: { type: 'bool', sql: Prisma.sql`COALESCE(d.pilot_connected, false)` },
    potentiallyStale: {
      type: 'bool',
      sql: Prisma.sql`(d.updated_at IS NULL OR d.updated_at < now() - make_interval(secs => ${staleAfterSeconds}))`,
    },
    'activeTrip.tripId': { type: 'string', sql: Prisma.sql`f.active_trip_id` },
    'activeTrip.tripType': trip(Prisma.sql`f.active_trip_type`, 'TRIP_TYPE_'),
    'activeTrip.stage': trip(Prisma.sql`f.active_trip_stage`, 'TRIP_STAGE_'),
    'activeTrip.currentStage': trip(Prisma.sql`f.active_trip_stage`, 'TRIP_STAGE_'),
    'activeTrip.deliveryId': { type: 'string', sql: Prisma.sql`f.active_delivery_id` },
    'foTasks.count': { type: 'number', sql: Prisma.sql`f.fo_task_count` },
    'deployment.deploymentId': { type: 'string', sql: Prisma.sql`f.deployment_id` },
    'deployment.locationId': { type: 'string', sql: Prisma.sql`f.deployment_location_id` },
  };
}

type SortType = 'string' | 'number' | 'bool' | 'time';
/** Orders: each a never-NULL sort key, so (key, serial) is a total order a page token can resume from. */
const orderFields: Record<string, { sql: Prisma.Sql; type: SortType }> = {
  serial: { sql: Prisma.sql`f.serial_number`, type: 'string' },
  status: { sql: Prisma.sql`f.status`, type: 'string' },
  batteryPercent: { sql: Prisma.sql`COALESCE(${batteryPercent}, -1)`, type: 'number' },
  'foTasks.count': { sql: Prisma.sql`f.fo_task_count`, type: 'number' },
  'activeTrip.stage': { sql: Prisma.sql`COALESCE(f.active_trip_stage, '')`, type: 'string' },
  online: { sql: Prisma.sql`COALESCE(d.online, false)`, type: 'bool' },
  statusChangedAt: { sql: Prisma.sql`f.status_changed_at`, type: 'time' },
};

const castTo: Record<SortType, Prisma.Sql> = {
  string: Prisma.sql`text`,
  number: Prisma.sql`float8`,
  bool: Prisma.sql`bool`,
  time: Prisma.sql`timestamptz`,
};

type Order = { field: string; desc: boolean };

function parseOrderBy(text: string | undefined): Order {
  const parts = (text ?? 'serial').trim().split(/\s+/);
  const [field, direction = 'asc'] = parts;
  if (parts.length > 2 || !Object.hasOwn(orderFields, field) || !/^(asc|desc)$/i.test(direction)) {
    throw invalidArgument('orderBy', `expected "<field> [asc|desc]" with a field of ${Object.keys(orderFields).join(', ')}; found "${text}"`);
  }
  return { field, desc: direction.toLowerCase() === 'desc' };
}

// A token comes back from the client: its values reach SQL as parameters, so they must be ones PostgreSQL takes (no NUL).
const pageKeySchema = z.object({
  q: z.string(),
  v: z.union([z.string().refine((v) => !v.includes('\u0000')), z.number(), z.boolean()]),
  s: serialSchema,
});
type PageKey = z.infer<typeof pageKeySchema>;

/** A token belongs to one filter and order: `q` is their digest, so it cannot resume another listing. */
const queryDigest = (filter: string, order: Order) =>
  createHash('sha256').update(`${filter}\n${order.field}\n${order.desc}`).digest('base64url').slice(0, 16);

export const listFleetDevicesQuerySchema = z.object({
  filter: z
    .string()
    .max(2000)
    .optional()
    .describe('e.g. `status=ON_TRIP AND online=true`, `batteryPercent>20`, `activeTrip.tripType=DELIVERY` (README lists the fields)'),
  orderBy: z.string().max(100).optional().describe(`"<field> [asc|desc]", field one of ${Object.keys(orderFields).join(', ')}; default serial`),
  pageSize: z.coerce.number().int().min(1).max(MAX_PAGE_SIZE).default(50),
  pageToken: z.string().max(1000).optional().describe('nextPageToken of the previous page, with the same filter and orderBy'),
});

const fleetDeviceResourceSchema = fleetDeviceSchema.meta({ id: 'FleetDevice' });

export const listFleetDevicesResponseSchema = z.object({
  fleetDevices: z.array(fleetDeviceResourceSchema),
  nextPageToken: z.string().describe('empty on the last page'),
  totalSize: z.number().int().describe('fleet devices matching the filter'),
});

const getFleetDeviceQuerySchema = z.object({
  fresh: z.enum(['true', 'false']).optional().describe('true: rebuild the row from the robot workflow and the current facts first'),
});
const serialParamsSchema = z.object({ serial: serialSchema });

export function fleetDeviceRoutes(deps: FleetRouteDeps): Router {
  const router = Router();
  const filterFields = fleetFilterFields(deps.config.FLEET_STALE_AFTER_SECONDS);
  const staleAfterMs = deps.config.FLEET_STALE_AFTER_SECONDS * 1000;

  router.get('/v1/fleet-devices/:serial', requireScope('read'), async (req, res) => {
    const { serial } = parseInput(serialParamsSchema, req.params);
    const { fresh } = parseInput(getFleetDeviceQuerySchema, req.query);
    const device = fresh === 'true' ? await readFresh(deps, serial, staleAfterMs) : await readOne(deps.prisma, serial, staleAfterMs);
    res.json(fleetDeviceSchema.parse(device));
  });

  router.get('/v1/fleet-devices', requireScope('read'), async (req, res) => {
    const query = parseInput(listFleetDevicesQuerySchema, req.query);
    const order = parseOrderBy(query.orderBy);
    const filter = query.filter ?? '';
    const digest = queryDigest(filter, order);
    const after = query.pageToken === undefined ? undefined : decodeKey(query.pageToken, digest, order);
    const where = filterSql(filter, filterFields);
    const { page, totalSize } = await readPage(deps.prisma, pageSql(where, order, after, query.pageSize + 1), staleAfterMs, { count: countSql(where) });
    const rows = page.slice(0, query.pageSize);
    const last = rows[rows.length - 1];
    const nextPageToken = page.length > query.pageSize ? encodePageToken(JSON.stringify({ q: digest, v: last.key, s: last.serial } satisfies PageKey)) : '';
    const fleetDevices = rows.flatMap((r) => (r.device ? [r.device] : []));
    res.json(listFleetDevicesResponseSchema.parse({ fleetDevices, nextPageToken, totalSize }));
  });

  return router;
}

function filterSql(text: string, fields: SqlFilterFields): Prisma.Sql {
  try {
    return filterToSql(parseFilter(text, filterTypes(fields)), fields);
  } catch (error) {
    if (error instanceof FilterError) throw invalidArgument('filter', error.message);
    throw error;
  }
}

function decodeKey(token: string, digest: string, order: Order): PageKey {
  let key: PageKey | undefined;
  decodePageToken(token, (text) => {
    try {
      key = pageKeySchema.parse(JSON.parse(text));
      return true;
    } catch {
      return false;
    }
  });
  if (key!.q !== digest) throw invalidArgument('pageToken', 'belongs to another filter or orderBy');
  const type = orderFields[order.field].type;
  const fits = type === 'number' ? typeof key!.v === 'number' : type === 'bool' ? typeof key!.v === 'boolean' : typeof key!.v === 'string';
  if (!fits) throw invalidArgument('pageToken', 'malformed page token');
  return key!;
}

function pageSql(where: Prisma.Sql, order: Order, after: PageKey | undefined, limit: number): Prisma.Sql {
  const { sql: sortKey, type } = orderFields[order.field];
  const dir = order.desc ? Prisma.sql`DESC` : Prisma.sql`ASC`;
  const cmp = order.desc ? Prisma.sql`<` : Prisma.sql`>`;
  const resume =
    after === undefined
      ? Prisma.sql`TRUE`
      : order.field === 'serial'
        ? Prisma.sql`f.serial_number ${cmp} ${after.s}`
        : Prisma.sql`(${sortKey}, f.serial_number) ${cmp} (${after.v}::${castTo[type]}, ${after.s}::text)`;
  return Prisma.sql`
    SELECT f.serial_number AS serial, ${sortKey} AS key, row_number() OVER (ORDER BY ${sortKey} ${dir}, f.serial_number ${dir}) AS n
    FROM fleet_devices f LEFT JOIN devices d ON d.serial_number = f.serial_number
    WHERE ${where} AND ${resume}
    ORDER BY ${sortKey} ${dir}, f.serial_number ${dir}
    LIMIT ${limit}`;
}

function countSql(where: Prisma.Sql): Prisma.Sql {
  return Prisma.sql`SELECT count(*)::int AS total FROM fleet_devices f LEFT JOIN devices d ON d.serial_number = f.serial_number WHERE ${where}`;
}

/** A listing's first page of keys and its count, the parts of the route's statement its filter decides (bench/fleet-list-latency.ts times them). */
export function fleetListStatements(filter: string, orderBy: string | undefined, pageSize: number, staleAfterSeconds: number) {
  const where = filterSql(filter, fleetFilterFields(staleAfterSeconds));
  return { page: pageSql(where, parseOrderBy(orderBy), undefined, pageSize + 1), count: countSql(where) };
}

type FleetDeviceRow = Parameters<typeof toFleetRow>[0];
type LidCycleRow = { cycleId: string; contextId: string | null; status: string; startedAt: Date };
type PageRow = { serial: string; key: unknown; fleet: object | null; device: object | null; batteries: object[]; components: object[]; software: object | null; cycle: object | null };

/**
 * The rows of `page` (serial, sort key, position n) with everything a FleetDevice is made of, and
 * `count`'s total on every row, in one statement of JSON rows (json, not jsonb: a fifth less of
 * PostgreSQL's time). Prisma's query per table and relation took the API a third more CPU and seven
 * round trips a page; the count on a connection of its own, another round trip and more CPU on
 * both sides. The page joins the total, not the other way round, so an empty page keeps its count.
 * Each row's fleet row and device are subqueries, not joins: joined, PostgreSQL hashed the page
 * and scanned all of fleet_devices for its 50 rows (3 of a statement's 10.5 ms, 10,000 devices).
 */
function fleetDevicesSql(page: Prisma.Sql, count: Prisma.Sql): Prisma.Sql {
  return Prisma.sql`
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

const noCount = Prisma.sql`SELECT NULL::int AS total`;

/** What fleetDevicesSql returns: the page's rows with the total, or one row of the total alone for an empty page. */
type CountedRow = Omit<PageRow, 'serial'> & { serial: string | null; total: number | null };
const isPageRow = (r: CountedRow): r is CountedRow & PageRow => r.serial !== null;

/** A page's rows as FleetDevices, with each row's sort key (`device` is null for a serial with no fleet row), and `count`'s total. */
async function readPage(prisma: PrismaClient, page: Prisma.Sql, staleAfterMs: number, { count = noCount, live }: { count?: Prisma.Sql; live?: Map<string, LiveDevice> } = {}) {
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
async function assembleOne(prisma: PrismaClient, serial: string, staleAfterMs: number, live?: LiveDevice): Promise<FleetDevice | undefined> {
  const { page } = await readPage(prisma, Prisma.sql`SELECT ${serial}::text AS serial, NULL::text AS key, 1 AS n`, staleAfterMs, { live: live && new Map([[serial, live]]) });
  return page[0]?.device ?? undefined;
}

async function readOne(prisma: PrismaClient, serial: string, staleAfterMs: number): Promise<FleetDevice> {
  let device = await assembleOne(prisma, serial, staleAfterMs);
  // A robot the projection knows but whose first decision has not reached the fleet view yet.
  if (!device && (await prisma.device.count({ where: { serialNumber: serial } })) > 0) {
    await refreshFleetRow(prisma, serial);
    device = await assembleOne(prisma, serial, staleAfterMs);
  }
  if (!device) throw notFound(`fleet device ${serial} not found`);
  return device;
}

type LiveDevice = { state: RobotState; readAt: number };

/**
 * `?fresh=true`: the robot workflow's live state, the row rebuilt from the replicas with the
 * workflow's `online`, and the workflow re-sent the facts if it holds an older version of them.
 */
async function readFresh(deps: FleetRouteDeps, serial: string, staleAfterMs: number): Promise<FleetDevice> {
  const live = await queryRobot(deps, serial);
  if (live === null && (await deps.prisma.fleetDevice.count({ where: { serialNumber: serial } })) === 0) {
    throw notFound(`fleet device ${serial} not found`);
  }
  await refreshFleetRow(deps.prisma, serial, live ? { online: live.state.online } : {});
  if (live) {
    const [current] = await readFactsUpdates(deps.prisma, [serial]);
    if (current && current.update.version > (live.factsVersion ?? 0)) await signalFleetFacts(deps, current).catch(() => undefined);
  }
  return (await assembleOne(deps.prisma, serial, staleAfterMs, live ?? undefined))!;
}

async function queryRobot(deps: FleetRouteDeps, serial: string): Promise<(LiveDevice & { factsVersion: number | null }) | null> {
  try {
    return await deps.temporal.withDeadline(Date.now() + FRESH_QUERY_TIMEOUT_MS, async () => {
      const handle = deps.temporal.workflow.getHandle(workflowIds.robot(serial));
      const [state, facts] = await Promise.all([handle.query(robotStateQuery), handle.query(fleetFactsQuery)]);
      return { state, factsVersion: facts?.version ?? null, readAt: Date.now() };
    });
  } catch (error) {
    if (isWorkflowNotFound(error)) return null;
    deps.logger.warn({ err: error, serial }, 'robot workflow query failed');
    throw unavailable('the robot workflow cannot be reached');
  }
}

function isWorkflowNotFound(error: unknown): boolean {
  if (error instanceof WorkflowNotFoundError) return true;
  const cause = error instanceof ServiceError ? error.cause : error;
  return isGrpcServiceError(cause) && cause.code === GRPC_NOT_FOUND;
}

export function registerFleetDevicePaths(registry: OpenAPIRegistry, secured: Record<string, string[]>[]): void {
  const json = (description: string, schema: z.ZodType): ResponseConfig => ({ description, content: { 'application/json': { schema } } });
  const error = (description: string) => json(description, errorSchema);
  registry.registerPath({
    method: 'get',
    path: '/v1/fleet-devices/{serial}',
    summary: 'One robot in the fleet view; fresh=true rebuilds it from its robot workflow and the current facts',
    security: secured,
    request: { params: serialParamsSchema, query: getFleetDeviceQuerySchema },
    responses: {
      200: json('The fleet device', fleetDeviceResourceSchema),
      400: error('Invalid input; the message names the field'),
      401: error('Missing or unknown x-api-key'),
      403: error('The API key lacks the read scope'),
      404: error('No such robot'),
      503: error('The robot workflow cannot be reached (fresh=true)'),
    },
  });
  registry.registerPath({
    method: 'get',
    path: '/v1/fleet-devices',
    summary: 'The fleet view, filtered, ordered and paged',
    security: secured,
    request: { query: listFleetDevicesQuerySchema },
    responses: {
      200: json('A page of fleet devices', listFleetDevicesResponseSchema),
      400: error('Invalid filter, orderBy, pageSize or pageToken; the message names it'),
      401: error('Missing or unknown x-api-key'),
      403: error('The API key lacks the read scope'),
    },
  });
}
