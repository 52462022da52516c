import { createHash, randomUUID } from 'node:crypto';
import type { OpenAPIRegistry, ResponseConfig } from '@asteasolutions/zod-to-openapi';
import { Router } from 'express';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { Prisma as PrismaClient } from '../infra/prisma';
import type { TemporalClient } from '../clients/connection';
import { cancelRollout, readRolloutProgress, startRollout } from '../clients/rollouts';
import { deviceRolloutStatuses, rolloutPhases, rolloutStatuses, type DeploymentView } from '../domain/rollout';
import { componentSpecSchema, rolloutPolicySchema, startDeploymentSchema } from '../domain/rollout-request';
import {
  forgetPendingDeployment,
  listDeployments,
  readDeploymentStatus,
  readProjectedDeployment,
  recordPendingDeployment,
} from '../store/rollouts';
import type { DeploymentWorkflowInput } from '../workflows/deployment';
import { requireScope } from './auth';
import { failedPrecondition, invalidArgument, notFound, parseInput, unavailable } from './errors';
import { errorSchema, pageTokenSchema } from './schemas';
import { softwareParamsSchema, softwareQuerySchema, softwareResourceSchema } from './software';

/** Greengrass rollouts: start one (scope deploy), follow it, list them, cancel one. */

type Deps = { prisma: PrismaClient; temporal: TemporalClient; logger: Logger; taskQueue?: string };

const QUERY_TIMEOUT_MS = 5000;
const MAX_PAGE_SIZE = 200;

const timestamp = z.string().describe('RFC 3339 timestamp');

export const deploymentIdSchema = z.string().regex(/^[A-Za-z0-9-]{1,64}$/, 'must be a deployment id');

export const deploymentViewSchema = z
  .object({
    deploymentId: z.string(),
    requestId: z.string().nullable(),
    targetArn: z.string(),
    components: z.record(z.string(), componentSpecSchema),
    rollout: rolloutPolicySchema,
    status: z.enum(rolloutStatuses),
    phase: z.enum(rolloutPhases),
    reason: z.string().nullable().describe('why it failed or was cancelled, or which devices failed within the budget'),
    cancelRequested: z.boolean(),
    devices: z.array(
      z.object({
        serial: z.string(),
        stage: z.enum(['CANARY', 'ROLLOUT']),
        status: z.enum(deviceRolloutStatuses),
        greengrassStatus: z.string().nullable().describe('Greengrass coreDeviceExecutionStatus'),
        reason: z.string().nullable(),
        greengrassDeploymentId: z.string().nullable(),
        updatedAt: timestamp.nullable(),
      }),
    ),
    greengrassDeployments: z.array(
      z.object({
        greengrassDeploymentId: z.string(),
        targetArn: z.string(),
        stage: z.enum(['CANARY', 'ROLLOUT']),
        status: z.string().describe('Greengrass deploymentStatus: ACTIVE, COMPLETED, CANCELED, FAILED, INACTIVE'),
        iotJobId: z.string().nullable(),
        createdAt: timestamp,
      }),
    ),
    deviceCounts: z.record(z.string(), z.number().int()),
    failurePercent: z.number().describe('share of target devices that FAILED or were CANCELLED'),
    createdAt: timestamp,
    updatedAt: timestamp,
    completedAt: timestamp.nullable(),
    version: z.number().int(),
  })
  .meta({ id: 'Deployment' });

export const deploymentSummarySchema = deploymentViewSchema.omit({ devices: true }).meta({ id: 'DeploymentSummary' });

export const startDeploymentResponseSchema = z.object({ deploymentId: z.string(), status: z.enum(rolloutStatuses) });
export const cancelDeploymentBodySchema = z.strictObject({ reason: z.string().max(500).optional() }).default({});
export const cancelDeploymentResponseSchema = z.object({ deploymentId: z.string(), status: z.enum(rolloutStatuses), cancelRequested: z.literal(true) });
export const deploymentParamsSchema = z.object({ id: deploymentIdSchema });
export const listDeploymentsQuerySchema = z.object({
  status: z.enum(rolloutStatuses).optional(),
  pageSize: z.coerce.number().int().min(1).max(MAX_PAGE_SIZE).default(50),
  pageToken: pageTokenSchema(200),
});
export const listDeploymentsResponseSchema = z.object({
  deployments: z.array(deploymentSummarySchema).describe('newest first'),
  nextPageToken: z.string().describe('empty on the last page'),
  totalSize: z.number().int(),
});

/** The same requestId always names the same deployment, so a repeated POST finds the first. */
export function deploymentIdFor(requestId: string): string {
  const h = createHash('sha256').update(`deployment-request\n${requestId}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

const isDone = (status: string) => status === 'SUCCEEDED' || status === 'FAILED' || status === 'CANCELLED';

export function deploymentRoutes(deps: Deps): Router {
  const router = Router();

  router.post('/v1/deployments', requireScope('deploy'), async (req, res) => {
    const body = parseInput(startDeploymentSchema, req.body ?? {});
    const deploymentId = body.requestId ? deploymentIdFor(body.requestId) : randomUUID();
    const input: DeploymentWorkflowInput = {
      deploymentId,
      requestId: body.requestId ?? null,
      targetArn: body.targetArn,
      components: body.components,
      rollout: body.rollout,
      createdAt: new Date().toISOString(),
    };
    const first = await recordPendingDeployment(deps.prisma, input);
    await startRollout(deps.temporal, input, deps.taskQueue).catch(async (error: unknown) => {
      if (first) await forgetPendingDeployment(deps.prisma, deploymentId);
      deps.logger.warn({ err: error, deploymentId }, 'starting the deployment workflow failed');
      throw unavailable('the deployment could not be started: Temporal is unavailable');
    });
    const row = await readDeploymentStatus(deps.prisma, deploymentId);
    res.status(first ? 201 : 200).json(startDeploymentResponseSchema.parse({ deploymentId, status: row?.status ?? 'PENDING' }));
  });

  router.get('/v1/deployments/:id', requireScope('read'), async (req, res) => {
    const { id } = parseInput(deploymentParamsSchema, req.params);
    res.json(deploymentViewSchema.parse(await readDeployment(deps, id)));
  });

  router.get('/v1/deployments', requireScope('read'), async (req, res) => {
    const query = parseInput(listDeploymentsQuerySchema, req.query);
    const after = query.pageToken === undefined ? null : decodeToken(query.pageToken);
    const { rows, total } = await listDeployments(deps.prisma, { status: query.status, after, limit: query.pageSize + 1 });
    const page = rows.slice(0, query.pageSize);
    const last = page[page.length - 1];
    const nextPageToken = rows.length > query.pageSize ? encodeToken(last.created_at, last.deployment_id) : '';
    const deployments = page.map((r) => ({ ...r.view, devices: undefined }));
    res.json(listDeploymentsResponseSchema.parse({ deployments, nextPageToken, totalSize: total }));
  });

  router.post('/v1/deployments/:id/cancel', requireScope('deploy'), async (req, res) => {
    const { id } = parseInput(deploymentParamsSchema, req.params);
    const { reason } = parseInput(cancelDeploymentBodySchema, req.body ?? {});
    const row = await readDeploymentStatus(deps.prisma, id);
    if (row && isDone(row.status)) throw failedPrecondition(`deployment ${id} is already ${row.status}`);
    const cancelled = await cancelRollout(deps.temporal, id, reason).catch(() => {
      throw unavailable('the deployment workflow cannot be reached');
    });
    if (cancelled === 'no-workflow') {
      if (row) throw failedPrecondition(`deployment ${id} has already ended`);
      throw notFound(`deployment ${id} not found`);
    }
    res.status(202).json(cancelDeploymentResponseSchema.parse({ deploymentId: id, status: row?.status ?? 'PENDING', cancelRequested: true }));
  });

  return router;
}

/** A finished rollout from the projection; a running one live from its workflow, the projection when that cannot answer. */
async function readDeployment(deps: Deps, id: string): Promise<DeploymentView> {
  const row = await readProjectedDeployment(deps.prisma, id);
  if (row && isDone(row.status)) return row.view;
  const live = await readRolloutProgress(deps.temporal, id, QUERY_TIMEOUT_MS).catch((error: unknown) => {
    if (row) return row.view;
    deps.logger.warn({ err: error, id }, 'deployment query failed');
    throw unavailable('the deployment workflow cannot be reached');
  });
  if (live) return live;
  if (row) return row.view;
  throw notFound(`deployment ${id} not found`);
}

const encodeToken = (createdAt: Date, id: string) => Buffer.from(`${createdAt.toISOString()}|${id}`, 'utf8').toString('base64url');

function decodeToken(token: string): { createdAt: string; id: string } {
  const text = Buffer.from(token, 'base64url').toString('utf8');
  const [createdAt, id] = text.split('|');
  const valid = id !== undefined && !Number.isNaN(Date.parse(createdAt)) && deploymentIdSchema.safeParse(id).success;
  if (!valid || Buffer.from(text, 'utf8').toString('base64url') !== token) throw invalidArgument('pageToken', 'malformed page token');
  return { createdAt, id };
}

/** The OpenAPI entries of the deployment and software routes (api/openapi.ts calls this). */
export function registerGreengrassPaths(registry: OpenAPIRegistry, security: Record<string, string[]>[]): void {
  const json = (description: string, schema: z.ZodType): ResponseConfig => ({ description, content: { 'application/json': { schema } } });
  const errors = (...statuses: number[]) => Object.fromEntries(statuses.map((s) => [s, json(errorMeaning[s], errorSchema)]));
  registry.registerPath({
    method: 'post',
    path: '/v1/deployments',
    summary: 'Start a Greengrass rollout (scope deploy): canaries, soak, then the rest',
    security,
    request: { body: { required: true, content: { 'application/json': { schema: startDeploymentSchema } } } },
    responses: {
      201: json('Started', startDeploymentResponseSchema),
      200: json('The deployment first started with this requestId', startDeploymentResponseSchema),
      ...errors(400, 401, 403, 503),
    },
  });
  registry.registerPath({
    method: 'get',
    path: '/v1/deployments/{id}',
    summary: 'A rollout: overall status, each device, the Greengrass deployments',
    security,
    request: { params: deploymentParamsSchema },
    responses: { 200: json('The rollout', deploymentViewSchema), ...errors(400, 401, 403, 404, 503) },
  });
  registry.registerPath({
    method: 'get',
    path: '/v1/deployments',
    summary: 'Rollouts, newest first',
    security,
    request: { query: listDeploymentsQuerySchema },
    responses: { 200: json('A page of rollouts', listDeploymentsResponseSchema), ...errors(400, 401, 403) },
  });
  registry.registerPath({
    method: 'post',
    path: '/v1/deployments/{id}/cancel',
    summary: 'Cancel a running rollout (scope deploy); Greengrass stops devices that have not received it',
    security,
    request: { params: deploymentParamsSchema, body: { content: { 'application/json': { schema: cancelDeploymentBodySchema } } } },
    responses: { 202: json('Cancel requested', cancelDeploymentResponseSchema), ...errors(400, 401, 403, 404, 409, 503) },
  });
  registry.registerPath({
    method: 'get',
    path: '/v1/devices/{serial}/software',
    summary: "A robot's Greengrass core device, installed components and effective deployments",
    security,
    request: { params: softwareParamsSchema, query: softwareQuerySchema },
    responses: { 200: json('Software status', softwareResourceSchema), ...errors(400, 401, 403, 404, 429, 503) },
  });
}

const errorMeaning: Record<number, string> = {
  400: 'Invalid input; the message names the field',
  401: 'Missing or unknown x-api-key',
  403: 'The API key lacks the scope',
  404: 'Not found',
  409: 'The deployment has already ended',
  429: 'Greengrass is throttling',
  503: 'A dependency is unavailable',
};
