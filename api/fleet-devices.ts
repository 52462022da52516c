import { createHash } from 'node:crypto';
import type { OpenAPIRegistry, ResponseConfig } from '@asteasolutions/zod-to-openapi';
import { Router } from 'express';
import { z } from 'zod';
import type { Prisma as PrismaClient } from '../infra/prisma';
import { fleetDeviceSchema, type FleetDevice } from '../domain/fleet-device';
import { FilterError, parseFilter } from '../domain/filter';
import { serialSchema } from '../domain/heartbeat';
import { readLiveRobot, signalFleetFacts } from '../clients/robots';
import { isInProjection } from '../store/devices';
import {
  fleetFilterTypes,
  fleetListStatements,
  fleetOrderTypes,
  hasFleetRow,
  listFleetDevices,
  readFactsUpdates,
  readFleetDevice,
  refreshFleetRow,
  type FleetOrder,
  type LiveDevice,
} from '../store/fleet';
import { requireScope } from './auth';
import { invalidArgument, notFound, parseInput, unavailable } from './errors';
import { robotStart, type FleetRouteDeps } from './operations-events';
import { decodePageToken, encodePageToken } from './page-token';
import { errorSchema, filterSchema, pageTokenSchema } from './schemas';

/**
 * The fleet view for Mission Control (seed 001 FleetDeviceService): GET one, or list with the
 * contract's filter language, an order, keyset page tokens and totalSize. Business facts and status
 * come from `fleet_devices`; the device part is joined from the projection at read time.
 */

const FRESH_QUERY_TIMEOUT_MS = 5000;
const MAX_PAGE_SIZE = 500;

export function parseOrderBy(text: string | undefined): FleetOrder {
  const parts = (text ?? 'serial').trim().split(/\s+/);
  const [field, direction = 'asc'] = parts;
  if (parts.length > 2 || !Object.hasOwn(fleetOrderTypes, field) || !/^(asc|desc)$/i.test(direction)) {
    throw invalidArgument('orderBy', `expected "<field> [asc|desc]" with a field of ${Object.keys(fleetOrderTypes).join(', ')}; found "${text}"`);
  }
  return { field, desc: direction.toLowerCase() === 'desc' };
}

/** What parseOrderBy takes, as a regex the document can declare: a field, then asc or desc in any case. */
const ORDER_BY = new RegExp(
  `^\\s*(${Object.keys(fleetOrderTypes).map((f) => f.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|')})(\\s+([Aa][Ss][Cc]|[Dd][Ee][Ss][Cc]))?\\s*$`,
);

// A token comes back from the client: its values reach SQL as parameters, so they must be ones PostgreSQL takes (no NUL).
const pageKeySchema = z.object({
  q: z.string(),
  v: z.union([z.string().refine((v) => !v.includes('\u0000')), z.number(), z.boolean()]),
  s: serialSchema,
});
type PageKey = z.infer<typeof pageKeySchema>;

/** A token belongs to one filter and order: `q` is their digest, so it cannot resume another listing. */
const queryDigest = (filter: string, order: FleetOrder) =>
  createHash('sha256').update(`${filter}\n${order.field}\n${order.desc}`).digest('base64url').slice(0, 16);

export const listFleetDevicesQuerySchema = z.object({
  filter: filterSchema(
    ['status=ON_TRIP AND online=true', 'batteryPercent>20', 'activeTrip.tripType=DELIVERY'],
    'e.g. `status=ON_TRIP AND online=true`, `batteryPercent>20`, `activeTrip.tripType=DELIVERY` (docs/fleet-view-and-partners.md lists the fields)',
  ),
  orderBy: z
    .string()
    .max(100)
    .regex(ORDER_BY, `expected "<field> [asc|desc]" with a field of ${Object.keys(fleetOrderTypes).join(', ')}`)
    .optional()
    .describe(`"<field> [asc|desc]", field one of ${Object.keys(fleetOrderTypes).join(', ')}; default serial`),
  pageSize: z.coerce.number().int().min(1).max(MAX_PAGE_SIZE).default(50),
  pageToken: pageTokenSchema(1000, 'nextPageToken of the previous page, with the same filter and orderBy'),
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
  const staleAfterSeconds = deps.config.FLEET_STALE_AFTER_SECONDS;
  const staleAfterMs = staleAfterSeconds * 1000;

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
    const statements = filterStatements(() => fleetListStatements(parseFilter(filter, fleetFilterTypes), order, query.pageSize, staleAfterSeconds, after));
    const { page, totalSize } = await listFleetDevices(deps.prisma, statements, staleAfterMs);
    const rows = page.slice(0, query.pageSize);
    const last = rows[rows.length - 1];
    const nextPageToken = page.length > query.pageSize ? encodePageToken(JSON.stringify({ q: digest, v: last.key, s: last.serial } satisfies PageKey)) : '';
    const fleetDevices = rows.flatMap((r) => (r.device ? [r.device] : []));
    res.json(listFleetDevicesResponseSchema.parse({ fleetDevices, nextPageToken, totalSize }));
  });

  return router;
}

/** A FilterError, from parsing the filter or from a value its field refuses (status), is a 400 naming the filter. */
function filterStatements<T>(build: () => T): T {
  try {
    return build();
  } catch (error) {
    if (error instanceof FilterError) throw invalidArgument('filter', error.message);
    throw error;
  }
}

function decodeKey(token: string, digest: string, order: FleetOrder): PageKey {
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
  const type = fleetOrderTypes[order.field];
  const fits = type === 'number' ? typeof key!.v === 'number' : type === 'bool' ? typeof key!.v === 'boolean' : typeof key!.v === 'string';
  if (!fits) throw invalidArgument('pageToken', 'malformed page token');
  return key!;
}

async function readOne(prisma: PrismaClient, serial: string, staleAfterMs: number): Promise<FleetDevice> {
  let device = await readFleetDevice(prisma, serial, staleAfterMs);
  // A robot the projection knows but whose first decision has not reached the fleet view yet.
  if (!device && (await isInProjection(prisma, serial))) {
    await refreshFleetRow(prisma, serial);
    device = await readFleetDevice(prisma, serial, staleAfterMs);
  }
  if (!device) throw notFound(`fleet device ${serial} not found`);
  return device;
}

/**
 * `?fresh=true`: the robot workflow's live state, the row rebuilt from the replicas with the
 * workflow's `online`, and the workflow re-sent the facts if it holds an older version of them.
 */
async function readFresh(deps: FleetRouteDeps, serial: string, staleAfterMs: number): Promise<FleetDevice> {
  const live = await queryRobot(deps, serial);
  if (live === null && !(await hasFleetRow(deps.prisma, serial))) {
    throw notFound(`fleet device ${serial} not found`);
  }
  await refreshFleetRow(deps.prisma, serial, live ? { online: live.state.online } : {});
  if (live) {
    const [current] = await readFactsUpdates(deps.prisma, [serial]);
    if (current && current.update.version > (live.factsVersion ?? 0)) await signalFleetFacts(deps.temporal, robotStart(deps), serial, current.update).catch(() => undefined);
  }
  return (await readFleetDevice(deps.prisma, serial, staleAfterMs, live ?? undefined))!;
}

async function queryRobot(deps: FleetRouteDeps, serial: string): Promise<(LiveDevice & { factsVersion: number | null }) | null> {
  try {
    const live = await readLiveRobot(deps.temporal, serial, FRESH_QUERY_TIMEOUT_MS);
    return live && { ...live, readAt: Date.now() };
  } catch (error) {
    deps.logger.warn({ err: error, serial }, 'robot workflow query failed');
    throw unavailable('the robot workflow cannot be reached');
  }
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
