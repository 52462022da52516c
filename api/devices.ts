import { Router } from 'express';
import { isGrpcServiceError, ServiceError, WorkflowNotFoundError, type Client } from '@temporalio/client';
import type { Logger } from 'pino';
import { Prisma } from '../generated/prisma/client';
import type { Prisma as PrismaClient } from '../infra/prisma';
import { deviceSchema, type Device } from '../domain/device';
import { deviceFromProjection, mergeLiveWithProjection, type DeviceProjection } from '../domain/device-projection';
import { FilterError, parseFilter } from '../domain/filter';
import { serialSchema } from '../domain/heartbeat';
import { robotStateToDevice, type RobotState } from '../domain/robot-state';
import { workflowIds } from '../temporal.config';
import { robotStateQuery } from '../workflows/robot';
import { filterToSql, filterTypes, type SqlFilterFields } from '../store/filter-sql';
import { requireScope } from './auth';
import { invalidArgument, notFound, parseInput, unavailable } from './errors';
import { decodePageToken, encodePageToken } from './page-token';
import { deviceParamsSchema, getDeviceQuerySchema, listDevicesQuerySchema, listDevicesResponseSchema } from './schemas';

type Deps = { prisma: PrismaClient; temporal: Client; logger: Logger };

const FRESH_QUERY_TIMEOUT_MS = 5000;
// gRPC status NOT_FOUND; @grpc/grpc-js is not a direct dependency.
const GRPC_NOT_FOUND = 5;

export const deviceFilterFields: SqlFilterFields = {
  serial: { type: 'string', sql: Prisma.sql`d.serial_number` },
  online: { type: 'bool', sql: Prisma.sql`d.online` },
  lidOpen: { type: 'bool', sql: Prisma.sql`d.lid_is_open` },
  // The lowest battery, stored by the heartbeat upsert.
  batteryPercent: { type: 'number', sql: Prisma.sql`d.battery_percent` },
  // The API shows NETWORK_TYPE_CELLULAR, the projection stores CELLULAR: accept both.
  networkType: { type: 'string', sql: Prisma.sql`d.network_type`, toColumn: (v) => String(v).replace(/^NETWORK_TYPE_/, '') },
};

const withParts = { batteries: true, components: true, software: true } as const;

export function deviceRoutes(deps: Deps): Router {
  const router = Router();

  router.get('/v1/devices/:serial', requireScope('read'), async (req, res) => {
    const { serial } = parseInput(deviceParamsSchema, req.params);
    const { fresh } = parseInput(getDeviceQuerySchema, req.query);
    const device = fresh === 'true' ? await readLiveDevice(deps, serial) : await readProjectedDevice(deps.prisma, serial);
    res.json(deviceSchema.parse(device));
  });

  router.get('/v1/devices', requireScope('read'), async (req, res) => {
    const query = parseInput(listDevicesQuerySchema, req.query);
    const after = query.pageToken === undefined ? undefined : decodePageToken(query.pageToken, isSerial);
    const where = filterToSql(parseDeviceFilter(query.filter), deviceFilterFields);
    const pageWithRows = async () => {
      const serials = await pageOfSerials(deps.prisma, where, after, query.pageSize + 1);
      const rows = await deps.prisma.device.findMany({ where: { serialNumber: { in: serials.slice(0, query.pageSize) } }, include: withParts });
      return { serials, rows };
    };
    // The count visits every match, the page only its rows: the count runs beside the page and its rows' read.
    const [{ serials, rows }, totalSize] = await Promise.all([pageWithRows(), countDevices(deps.prisma, where)]);
    const page = serials.slice(0, query.pageSize);
    const bySerial = new Map(rows.map((r) => [r.serialNumber, r]));
    const devices = page.flatMap((s) => {
      const row = bySerial.get(s);
      return row ? [deviceFromProjection(row)] : [];
    });
    const nextPageToken = serials.length > query.pageSize ? encodePageToken(page[page.length - 1]) : '';
    res.json(listDevicesResponseSchema.parse({ devices, nextPageToken, totalSize }));
  });

  return router;
}

const isSerial = (s: string) => serialSchema.safeParse(s).success;

function parseDeviceFilter(text: string | undefined) {
  try {
    return parseFilter(text ?? '', filterTypes(deviceFilterFields));
  } catch (error) {
    if (error instanceof FilterError) throw invalidArgument('filter', error.message);
    throw error;
  }
}

async function pageOfSerials(prisma: PrismaClient, where: Prisma.Sql, after: string | undefined, limit: number): Promise<string[]> {
  const rows = await prisma.$queryRaw<{ serial: string }[]>(pageSql(where, after, limit));
  return rows.map((r) => r.serial);
}

function pageSql(where: Prisma.Sql, after: string | undefined, limit: number): Prisma.Sql {
  const afterSql = after === undefined ? Prisma.sql`TRUE` : Prisma.sql`d.serial_number > ${after}`;
  return Prisma.sql`
    SELECT d.serial_number AS serial FROM devices d
    WHERE ${where} AND ${afterSql}
    ORDER BY d.serial_number LIMIT ${limit}`;
}

async function countDevices(prisma: PrismaClient, where: Prisma.Sql): Promise<number> {
  const [row] = await prisma.$queryRaw<{ total: number }[]>(countSql(where));
  return row.total;
}

const countSql = (where: Prisma.Sql) => Prisma.sql`SELECT count(*)::int AS total FROM devices d WHERE ${where}`;

/** The first page's and the count's statements of a listing, as the route runs them (bench/fleet-list-latency.ts explains them). */
export function deviceListStatements(filter: string, pageSize: number) {
  const where = filterToSql(parseDeviceFilter(filter), deviceFilterFields);
  return { page: pageSql(where, undefined, pageSize + 1), count: countSql(where) };
}

function findProjection(prisma: PrismaClient, serial: string): Promise<DeviceProjection | null> {
  return prisma.device.findUnique({ where: { serialNumber: serial }, include: withParts });
}

async function readProjectedDevice(prisma: PrismaClient, serial: string): Promise<Device> {
  const row = await findProjection(prisma, serial);
  if (!row) throw notFound(`device ${serial} not found`);
  return deviceFromProjection(row);
}

async function readLiveDevice(deps: Deps, serial: string): Promise<Device> {
  const [state, row] = await Promise.all([queryRobotState(deps, serial), findProjection(deps.prisma, serial)]);
  return mergeLiveWithProjection(robotStateToDevice(state), state.lastHeartbeatAt, row);
}

async function queryRobotState({ temporal, logger }: Deps, serial: string): Promise<RobotState> {
  try {
    return await temporal.withDeadline(Date.now() + FRESH_QUERY_TIMEOUT_MS, () =>
      temporal.workflow.getHandle(workflowIds.robot(serial)).query(robotStateQuery),
    );
  } catch (error) {
    if (isWorkflowNotFound(error)) throw notFound(`device ${serial} not found`);
    logger.warn({ err: error, serial }, 'robot workflow query failed');
    throw unavailable('the robot workflow cannot be reached');
  }
}

function isWorkflowNotFound(error: unknown): boolean {
  if (error instanceof WorkflowNotFoundError) return true;
  const cause = error instanceof ServiceError ? error.cause : error;
  return isGrpcServiceError(cause) && cause.code === GRPC_NOT_FOUND;
}
