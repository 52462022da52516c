import type { OpenAPIRegistry, ResponseConfig } from '@asteasolutions/zod-to-openapi';
import { Router } from 'express';
import { z } from 'zod';
import { deviceFromProjection } from '../domain/device-projection';
import { serialSchema } from '../domain/heartbeat';
import type { Prisma as PrismaClient } from '../infra/prisma';
import { readDevices } from '../store/devices';
import { requireScope } from './auth';
import { parseInput } from './errors';
import { deviceResourceSchema, errorSchema } from './schemas';

/** `GET /v1/devices:batchGet?serials=A,B,...`: seed 001 BatchGetDevices, up to 1,000 robots in one statement. */

export const MAX_BATCH_SERIALS = 1000;

/** `A,B,C`: distinct serials in the order first given, 1 to 1,000 of them; a 400 names `serials`. */
export const serialListSchema = z
  .string()
  .superRefine((text, ctx) => {
    const serials = text.split(',');
    if (serials.length > MAX_BATCH_SERIALS) {
      ctx.addIssue({ code: 'custom', message: `at most ${MAX_BATCH_SERIALS} serials, got ${serials.length}` });
      return;
    }
    const bad = serials.find((s) => !serialSchema.safeParse(s).success);
    if (bad !== undefined) ctx.addIssue({ code: 'custom', message: `${JSON.stringify(bad.slice(0, 64))} is not a serial (1 to 64 letters, digits, "_" or "-")` });
  })
  .meta({ pattern: `^[A-Za-z0-9_-]{1,64}(,[A-Za-z0-9_-]{1,64}){0,${MAX_BATCH_SERIALS - 1}}$` })
  .transform((text) => [...new Set(text.split(','))])
  .describe(`comma-separated serials, at most ${MAX_BATCH_SERIALS}`);

export const batchGetDevicesQuerySchema = z.object({ serials: serialListSchema });

export const batchGetDevicesResponseSchema = z.object({
  devices: z.array(deviceResourceSchema).describe('the known ones, in the order asked'),
  missing: z.array(z.string()).describe('serials the projection does not know, in the order asked'),
});

// Express reads `:name` as a parameter: the colon of `devices:batchGet` is escaped.
const BATCH_GET_PATH = '/v1/devices\\:batchGet';

export function batchGetDeviceRoutes(deps: { prisma: PrismaClient }): Router {
  const router = Router();

  router.get(BATCH_GET_PATH, requireScope('read'), async (req, res) => {
    const { serials } = parseInput(batchGetDevicesQuerySchema, req.query);
    const found = new Map((await readDevices(deps.prisma, serials)).map((d) => [d.projection.serialNumber, d.projection]));
    res.json(
      batchGetDevicesResponseSchema.parse({
        devices: serials.flatMap((s) => {
          const row = found.get(s);
          return row ? [deviceFromProjection(row)] : [];
        }),
        missing: serials.filter((s) => !found.has(s)),
      }),
    );
  });

  return router;
}

export function registerBatchGetDevicePaths(registry: OpenAPIRegistry, secured: Record<string, string[]>[]): void {
  const json = (description: string, schema: z.ZodType): ResponseConfig => ({ description, content: { 'application/json': { schema } } });
  registry.registerPath({
    method: 'get',
    path: '/v1/devices:batchGet',
    summary: 'Up to 1,000 devices from the projection at once (seed BatchGetDevices)',
    security: secured,
    request: { query: batchGetDevicesQuerySchema },
    responses: {
      200: json('The devices known, and the serials not', batchGetDevicesResponseSchema),
      400: json('serials missing, not serials, or more than 1,000', errorSchema),
      401: json('Missing or unknown x-api-key', errorSchema),
      403: json('The API key lacks the read scope', errorSchema),
    },
  });
}
