import type { OpenAPIRegistry, ResponseConfig } from '@asteasolutions/zod-to-openapi';
import { Router } from 'express';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { Config } from '../config';
import type { Prisma as PrismaClient } from '../infra/prisma';
import type { TemporalClient } from '../clients/connection';
import type { RobotStart } from '../clients/robots';
import { lidSettings } from '../domain/lid';
import {
  operationsEventBatchSchema,
  operationsEventSchema,
  type OperationsEvent,
} from '../domain/operations-events';
import { applyOperationsFacts, FactsNotSignalled } from '../ingest/operations-facts';
import { OperationsEventConflict } from '../store/fleet';
import { requireScope } from './auth';
import { ApiError, parseInput, unavailable } from './errors';
import { errorSchema } from './schemas';

/**
 * POST /v1/operations-events: business facts from Operations and Deliveries. The answer comes after
 * the facts are stored and applied and the workflows are signalled; a 503 means "send the same
 * events again" (ids make that harmless, and a repeat signals again).
 */

export type FleetRouteDeps = { prisma: PrismaClient; temporal: TemporalClient; config: Config; logger: Logger; taskQueue?: string };

export const operationsEventsResponseSchema = z.object({
  results: z.array(
    z.object({
      id: z.string(),
      outcome: z
        .enum(['APPLIED', 'STALE', 'DUPLICATE'])
        .describe('APPLIED changed the fleet view; STALE was kept but a newer fact about the same entity had been applied; DUPLICATE was seen before'),
    }),
  ),
});

export function operationsEventRoutes(deps: FleetRouteDeps): Router {
  const router = Router();

  router.post('/v1/operations-events', requireScope('operate'), async (req, res) => {
    const events = parseEvents(req.body);
    const results = await applyOperationsFacts(factsDeps(deps), events).catch((error: unknown) => {
      if (error instanceof OperationsEventConflict) throw new ApiError(409, 'ALREADY_EXISTS', error.message);
      if (error instanceof FactsNotSignalled) {
        deps.logger.warn({ err: error.cause }, 'signalling workflows after operations events failed');
        throw unavailable('facts stored, but the workflows could not be signalled: send the same events again');
      }
      throw error;
    });
    res.json(operationsEventsResponseSchema.parse({ results }));
  });

  return router;
}

function parseEvents(body: unknown): OperationsEvent[] {
  if (body !== null && typeof body === 'object' && 'events' in body) return parseInput(operationsEventBatchSchema, body).events;
  return [parseInput(operationsEventSchema, body)];
}

/** What applying facts needs, from the route's configuration. */
function factsDeps(deps: FleetRouteDeps) {
  return { prisma: deps.prisma, temporal: deps.temporal, robotStart: robotStart(deps), pushIntervalMs: deps.config.PARTNER_PUSH_INTERVAL_SECONDS * 1000, taskQueue: deps.taskQueue };
}

/** How a robot workflow starts when Operations or DriveU know the robot before its first heartbeat. */
export function robotStart(deps: Pick<FleetRouteDeps, 'config' | 'taskQueue'>): RobotStart {
  return { offlineAfterMs: deps.config.OFFLINE_AFTER_SECONDS * 1000, lid: lidSettings(deps.config), taskQueue: deps.taskQueue };
}

export function registerOperationsEventPaths(registry: OpenAPIRegistry, secured: Record<string, string[]>[]): void {
  const json = (description: string, schema: z.ZodType): ResponseConfig => ({ description, content: { 'application/json': { schema } } });
  registry.registerPath({
    method: 'post',
    path: '/v1/operations-events',
    summary: 'Business facts from Operations and Deliveries (scope operate): one event, or { events: [...] } with up to 500',
    security: secured,
    request: {
      body: { required: true, content: { 'application/json': { schema: z.union([operationsEventSchema, operationsEventBatchSchema]) } } },
    },
    responses: {
      200: json('Each event with what became of it', operationsEventsResponseSchema),
      400: json('Invalid input; the message names the field', errorSchema),
      401: json('Missing or unknown x-api-key', errorSchema),
      403: json('The API key lacks the operate scope', errorSchema),
      409: json('An id was already received with different content', errorSchema),
      503: json('Stored, but the workflows could not be signalled: send the same events again', errorSchema),
    },
  });
}
