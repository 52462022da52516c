import { Router } from 'express';
import type { GreengrassV2Client } from '@aws-sdk/client-greengrassv2';
import { ApplicationFailure } from '@temporalio/common';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { Prisma as PrismaClient } from '../infra/prisma';
import { greengrassErrorTypes, readSoftwareStatus } from '../activities/greengrass';
import { serialSchema } from '../domain/heartbeat';
import { softwareStatusSchema, type SoftwareStatus } from '../domain/software';
import { isKnownRobot, readProjectedSoftware, writeSoftwareStatus } from '../store/software';
import { requireScope } from './auth';
import { ApiError, notFound, parseInput, unavailable } from './errors';

/** A robot's Greengrass software: from the poller's projection, or read from Greengrass now with fresh=true. */

type Deps = { prisma: PrismaClient; logger: Logger; greengrass?: GreengrassV2Client };

export const softwareResourceSchema = softwareStatusSchema.meta({ id: 'DeviceSoftware' });
export const softwareParamsSchema = z.object({ serial: serialSchema });
export const softwareQuerySchema = z.object({
  fresh: z.enum(['true', 'false']).optional().describe('true: read Greengrass now (and refresh the projection)'),
});

export function softwareRoutes(deps: Deps): Router {
  const router = Router();

  router.get('/v1/devices/:serial/software', requireScope('read'), async (req, res) => {
    const { serial } = parseInput(softwareParamsSchema, req.params);
    const { fresh } = parseInput(softwareQuerySchema, req.query);
    const status = fresh === 'true' ? await readFresh(deps, serial) : await readProjected(deps.prisma, serial);
    res.json(softwareStatusSchema.parse(status));
  });

  return router;
}

async function readProjected(prisma: PrismaClient, serial: string): Promise<SoftwareStatus> {
  const status = await readProjectedSoftware(prisma, serial);
  if (!status) throw notFound(`device ${serial} not found`);
  return status;
}

async function readFresh(deps: Deps, serial: string): Promise<SoftwareStatus> {
  if (!deps.greengrass) throw unavailable('Greengrass is not configured for this API');
  let status: SoftwareStatus;
  try {
    status = await readSoftwareStatus(deps.greengrass, serial);
  } catch (error) {
    deps.logger.warn({ err: error, serial }, 'reading Greengrass failed');
    if (error instanceof ApplicationFailure && error.type === greengrassErrorTypes.throttled) {
      throw new ApiError(429, 'RESOURCE_EXHAUSTED', 'Greengrass is throttling requests; try again shortly');
    }
    throw unavailable(`Greengrass cannot be read: ${error instanceof Error ? error.message : String(error)}`);
  }
  const known = await isKnownRobot(deps.prisma, serial);
  if (!known && status.coreDevice === null) throw notFound(`device ${serial} not found`);
  await writeSoftwareStatus(deps.prisma, [status]);
  return status;
}
