import { Router } from 'express';
import type { Logger } from 'pino';
import type { Prisma as PrismaClient } from '../infra/prisma';
import { deviceSchema, type Device } from '../domain/device';
import { deviceFromProjection, mergeLiveWithProjection } from '../domain/device-projection';
import { FilterError, parseFilter } from '../domain/filter';
import { serialSchema } from '../domain/heartbeat';
import { robotStateToDevice, type RobotState } from '../domain/robot-state';
import type { TemporalClient } from '../clients/connection';
import { readRobotState } from '../clients/robots';
import { deviceFilterTypes, listDevices, readDeviceProjection } from '../store/devices';
import { requireScope } from './auth';
import { invalidArgument, notFound, parseInput, unavailable } from './errors';
import { decodePageToken, encodePageToken } from './page-token';
import { deviceParamsSchema, getDeviceQuerySchema, listDevicesQuerySchema, listDevicesResponseSchema } from './schemas';

type Deps = { prisma: PrismaClient; temporal: TemporalClient; logger: Logger };

const FRESH_QUERY_TIMEOUT_MS = 5000;

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
    const { serials, rows, totalSize } = await listDevices(deps.prisma, parseDeviceFilter(query.filter), after, query.pageSize);
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
    return parseFilter(text ?? '', deviceFilterTypes);
  } catch (error) {
    if (error instanceof FilterError) throw invalidArgument('filter', error.message);
    throw error;
  }
}

async function readProjectedDevice(prisma: PrismaClient, serial: string): Promise<Device> {
  const row = await readDeviceProjection(prisma, serial);
  if (!row) throw notFound(`device ${serial} not found`);
  return deviceFromProjection(row);
}

async function readLiveDevice(deps: Deps, serial: string): Promise<Device> {
  const [state, row] = await Promise.all([queryRobotState(deps, serial), readDeviceProjection(deps.prisma, serial)]);
  return mergeLiveWithProjection(robotStateToDevice(state), state.lastHeartbeatAt, row);
}

async function queryRobotState({ temporal, logger }: Deps, serial: string): Promise<RobotState> {
  const state = await readRobotState(temporal, serial, FRESH_QUERY_TIMEOUT_MS).catch((error: unknown) => {
    logger.warn({ err: error, serial }, 'robot workflow query failed');
    throw unavailable('the robot workflow cannot be reached');
  });
  if (!state) throw notFound(`device ${serial} not found`);
  return state;
}
