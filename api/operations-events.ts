import type { OpenAPIRegistry, ResponseConfig } from '@asteasolutions/zod-to-openapi';
import { Router } from 'express';
import {
  WorkflowExecutionAlreadyStartedError,
  WorkflowIdReusePolicy,
  WorkflowNotFoundError,
  type Client,
} from '@temporalio/client';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { Config } from '../config';
import type { Prisma as PrismaClient } from '../infra/prisma';
import { partnerProviders } from '../activities/partners';
import { lidSettings } from '../domain/lid';
import {
  operationsEventBatchSchema,
  operationsEventSchema,
  type OperationsEvent,
} from '../domain/operations-events';
import { applyOperationsEvents, OperationsEventConflict, type DeliverySignal, type FleetFactsSignal } from '../store/fleet';
import { searchAttributes, taskQueues, workflowIds } from '../temporal.config';
import { deliverySnapshotSignal, partnerDeliveryWorkflow } from '../workflows/partner-delivery';
import { fleetFactsSignal, robotWorkflow, type RobotWorkflowInput } from '../workflows/robot';
import { requireScope } from './auth';
import { ApiError, parseInput, unavailable } from './errors';
import { errorSchema } from './schemas';

/**
 * POST /v1/operations-events: business facts from Operations and Deliveries. The answer comes after
 * the facts are stored and applied and the workflows are signalled; a 503 means "send the same
 * events again" (ids make that harmless, and a repeat signals again).
 */

export type FleetRouteDeps = { prisma: PrismaClient; temporal: Client; config: Config; logger: Logger; taskQueue?: string };

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
    const applied = await applyOperationsEvents(deps.prisma, events).catch((error: unknown) => {
      if (error instanceof OperationsEventConflict) throw new ApiError(409, 'ALREADY_EXISTS', error.message);
      throw error;
    });
    try {
      await Promise.all(applied.robots.map((r) => signalFleetFacts(deps, r)));
      await Promise.all(applied.deliveries.map((d) => signalPartnerDelivery(deps, d)));
    } catch (error) {
      deps.logger.warn({ err: error }, 'signalling workflows after operations events failed');
      throw unavailable('facts stored, but the workflows could not be signalled: send the same events again');
    }
    res.json(operationsEventsResponseSchema.parse({ results: applied.results }));
  });

  return router;
}

function parseEvents(body: unknown): OperationsEvent[] {
  if (body !== null && typeof body === 'object' && 'events' in body) return parseInput(operationsEventBatchSchema, body).events;
  return [parseInput(operationsEventSchema, body)];
}

/** Signal-with-start options, so a robot Operations or DriveU knows before its first heartbeat has its workflow too. */
export function robotWorkflowStart(deps: Pick<FleetRouteDeps, 'config' | 'taskQueue'>, serial: string) {
  return {
    workflowId: workflowIds.robot(serial),
    taskQueue: deps.taskQueue ?? taskQueues.fleet,
    args: [{ serial, offlineAfterMs: deps.config.OFFLINE_AFTER_SECONDS * 1000, lid: lidSettings(deps.config) }] as [RobotWorkflowInput],
    workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
    typedSearchAttributes: [
      { key: searchAttributes.robotSerial, value: serial },
      { key: searchAttributes.online, value: false },
      { key: searchAttributes.fleetStatus, value: 'OFFLINE' },
    ],
  };
}

export async function signalFleetFacts(deps: Pick<FleetRouteDeps, 'temporal' | 'config' | 'taskQueue'>, r: FleetFactsSignal): Promise<void> {
  await deps.temporal.workflow.signalWithStart(robotWorkflow, { ...robotWorkflowStart(deps, r.serial), signal: fleetFactsSignal, signalArgs: [r.update] });
}

/** An active mapping of a provider we push to starts (or signals) its workflow; an ended one only signals. */
async function signalPartnerDelivery(deps: FleetRouteDeps, { mapping, snapshot }: DeliverySignal): Promise<void> {
  if (!partnerProviders.includes(mapping.provider)) return;
  const workflowId = workflowIds.partnerDelivery(mapping.provider, mapping.deliveryId);
  try {
    if (mapping.endedAt !== null || mapping.providerVehicleId === null) {
      await deps.temporal.workflow.getHandle(workflowId).signal(deliverySnapshotSignal, snapshot);
      return;
    }
    await deps.temporal.workflow.signalWithStart(partnerDeliveryWorkflow, {
      workflowId,
      taskQueue: deps.taskQueue ?? taskQueues.fleet,
      args: [
        {
          provider: mapping.provider,
          deliveryId: mapping.deliveryId,
          serial: mapping.serial,
          providerVehicleId: mapping.providerVehicleId,
          dropoff: mapping.dropoff,
          pushIntervalMs: deps.config.PARTNER_PUSH_INTERVAL_SECONDS * 1000,
        },
      ],
      signal: deliverySnapshotSignal,
      signalArgs: [snapshot],
      // A delivery that has ended never starts again, whatever arrives late.
      workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
      typedSearchAttributes: [{ key: searchAttributes.robotSerial, value: mapping.serial }],
    });
  } catch (error) {
    if (error instanceof WorkflowNotFoundError || error instanceof WorkflowExecutionAlreadyStartedError) return;
    throw error;
  }
}

export function registerOperationsEventPaths(registry: OpenAPIRegistry, secured: Record<string, string[]>[]): void {
  const json = (description: string, schema: z.ZodType): ResponseConfig => ({ description, content: { 'application/json': { schema } } });
  registry.registerPath({
    method: 'post',
    path: '/v1/operations-events',
    summary: 'Business facts from Operations and Deliveries (scope operate): one event, or { events: [...] } with up to 500',
    security: secured,
    request: {
      body: { content: { 'application/json': { schema: z.union([operationsEventSchema, operationsEventBatchSchema]) } } },
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
