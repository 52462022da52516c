import { randomUUID } from 'node:crypto';
import type { OpenAPIRegistry, ResponseConfig } from '@asteasolutions/zod-to-openapi';
import { Router } from 'express';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { Config } from '../config';
import type { Prisma as PrismaClient } from '../infra/prisma';
import { startCommand } from '../clients/commands';
import type { TemporalClient } from '../clients/connection';
import { acceptCommand, readAcceptedCommand, readCommand, robotExists, type CommandRow } from '../store/commands';
import { commandIdForRequest } from '../domain/command-ids';
import { commandStatuses, commandTypes, type CommandRecord, type CommandSource, type CommandType } from '../domain/commands';
import { serialSchema } from '../domain/heartbeat';
import { declareKeys, declarePattern, jsonSchemaOf } from '../domain/json-schema';
import { pinHashSecret, seal } from '../domain/lid-pins';
import { seedEnum } from '../domain/seed-enum';
import { requireScope } from './auth';
import { notFound, parseInput } from './errors';
import { errorSchema } from './schemas';

/**
 * Commands to robots (scope operate to send, read to follow). A command is a row and a
 * `command:<serial>:<commandId>` workflow that publishes it and follows the robot's acks.
 */

export type CommandDeps = { prisma: PrismaClient; temporal: TemporalClient; logger: Logger; config: Config; taskQueue?: string };

const timestamp = z.string().describe('RFC 3339 timestamp');

/** Also accepts the seed's enum names (DEVICE_COMMAND_TYPE_UNLOCK_LID). */
const commandTypeSchema = seedEnum(commandTypes, 'DEVICE_COMMAND_TYPE_');
const setPinTypeSchema = seedEnum(['SET_PIN'], 'DEVICE_COMMAND_TYPE_');

/** What a SET_PIN's parameters must hold: a pin of 2 to 10 digits, or clear: "true". */
const setPinParametersSchema = z.union([z.object({ clear: z.literal('true') }), z.object({ pin: z.string().regex(/^\d{2,10}$/) })]);

export const sendCommandBodySchema = z
  .object({
    commandType: commandTypeSchema,
    parameters: declareKeys(z.record(z.string().regex(/^[A-Za-z][A-Za-z0-9_]{0,63}$/, 'parameter names are letters, digits and "_"'), z.string().max(256)))
      .refine((p) => Object.keys(p).length <= 20, 'at most 20 parameters')
      .meta({ maxProperties: 20 })
      .default({}),
    requestId: z.string().min(1).max(255).optional().describe('the same requestId again returns the first command'),
    timeoutSeconds: z.number().int().min(1).max(3600).optional().describe('the command times out unless EXECUTED or FAILED by then (default COMMAND_TIMEOUT_SECONDS)'),
  })
  .superRefine((body, ctx) => {
    if (body.commandType !== 'SET_PIN' || setPinParametersSchema.safeParse(body.parameters).success) return;
    ctx.addIssue({ code: 'custom', path: ['parameters', 'pin'], message: 'SET_PIN needs a pin of 2 to 10 digits (or clear: "true")' });
  })
  .meta({
    if: { properties: { commandType: jsonSchemaOf(setPinTypeSchema) }, required: ['commandType'] },
    then: { properties: { parameters: jsonSchemaOf(setPinParametersSchema) }, required: ['parameters'] },
  });

export const commandParamsSchema = z.object({ serial: serialSchema, commandId: declarePattern(z.uuid('must be a command id (UUID)')) });
const serialParamsSchema = z.object({ serial: serialSchema });

export const sendCommandResponseSchema = z.object({
  commandId: z.string(),
  status: z.enum(commandStatuses),
  sentAt: timestamp.nullable().describe('null until the command has been published'),
});

export const commandViewSchema = z
  .object({
    commandId: z.string(),
    serial: z.string(),
    commandType: z.enum(commandTypes),
    parameters: z.record(z.string(), z.string()).describe("a SET_PIN's pin is never shown"),
    requestId: z.string().nullable(),
    source: z.enum(['API', 'PIN_ENTRY', 'UNLOCK_PIN']),
    contextId: z.string().nullable(),
    status: z.enum(commandStatuses),
    message: z.string().nullable().describe("the robot's message with its last ack, or why it timed out"),
    issuedAt: timestamp,
    expiresAt: timestamp,
    sentAt: timestamp.nullable(),
    acknowledgedAt: timestamp.nullable(),
    completedAt: timestamp.nullable(),
  })
  .meta({ id: 'DeviceCommand' });

const iso = (d: Date | null) => d?.toISOString() ?? null;

export function commandView(row: CommandRow): z.infer<typeof commandViewSchema> {
  return {
    commandId: row.commandId,
    serial: row.serialNumber,
    commandType: row.commandType as CommandType,
    parameters: row.parameters as Record<string, string>,
    requestId: row.requestId,
    source: row.source as CommandSource,
    contextId: row.contextId,
    status: row.status as z.infer<typeof commandViewSchema>['status'],
    message: row.message,
    issuedAt: row.issuedAt.toISOString(),
    expiresAt: row.expiresAt.toISOString(),
    sentAt: iso(row.sentAt),
    acknowledgedAt: iso(row.acknowledgedAt),
    completedAt: iso(row.completedAt),
  };
}

export async function requireDevice(prisma: PrismaClient, serial: string): Promise<void> {
  if (!(await robotExists(prisma, serial))) throw notFound(`device ${serial} not found`);
}

export type IssueCommand = {
  serial: string;
  type: CommandType;
  parameters: Record<string, string>;
  requestId: string | null;
  timeoutMs: number;
  source: CommandSource;
  contextId?: string | null;
};

/**
 * Starts the command's workflow, whose first step stores the row, then stores it here too and
 * answers the stored command: a request that dies between the two leaves the workflow to write
 * it, never a row no workflow will send. A second start of the same command joins the first.
 * A SET_PIN's pin is sealed for the workflow and left out of the row.
 */
export async function issueCommand(deps: CommandDeps, c: IssueCommand): Promise<{ command: CommandRecord; repeated: boolean }> {
  const { pin, ...visible } = c.parameters;
  const sealed = c.type === 'SET_PIN' && pin !== undefined ? seal(pinHashSecret(deps.config), { pin }) : null;
  const issuedAt = Date.now();
  const commandId = c.requestId === null ? randomUUID() : commandIdForRequest(c.serial, c.requestId);
  const issued: CommandRecord = {
    commandId,
    serial: c.serial,
    type: c.type,
    parameters: c.type === 'SET_PIN' ? visible : c.parameters,
    issuedAt,
    expiresAt: issuedAt + c.timeoutMs,
    requestId: c.requestId,
    source: c.source,
    contextId: c.contextId ?? null,
    pinEntryId: null,
  };
  await startCommand(deps.temporal, issued, { sealed, taskQueue: deps.taskQueue });
  const command = await acceptCommand(deps.prisma, issued);
  return { command, repeated: command.commandId !== commandId || command.issuedAt !== issuedAt };
}

export function commandRoutes(deps: CommandDeps): Router {
  const router = Router();

  router.post('/v1/devices/:serial/commands', requireScope('operate'), async (req, res) => {
    const { serial } = parseInput(serialParamsSchema, req.params);
    const body = parseInput(sendCommandBodySchema, req.body ?? {});
    await requireDevice(deps.prisma, serial);
    const { command, repeated } = await issueCommand(deps, {
      serial,
      type: body.commandType,
      parameters: body.parameters,
      requestId: body.requestId ?? null,
      timeoutMs: (body.timeoutSeconds ?? deps.config.COMMAND_TIMEOUT_SECONDS) * 1000,
      source: 'API',
      contextId: body.parameters.contextId ?? null,
    });
    const row = await readAcceptedCommand(deps.prisma, command.commandId);
    res.status(repeated ? 200 : 202).json(sendCommandResponseSchema.parse({ commandId: row.commandId, status: row.status, sentAt: iso(row.sentAt) }));
  });

  router.get('/v1/devices/:serial/commands/:commandId', requireScope('read'), async (req, res) => {
    const { serial, commandId } = parseInput(commandParamsSchema, req.params);
    const row = await readCommand(deps.prisma, commandId);
    if (!row || row.serialNumber !== serial) throw notFound(`command ${commandId} of device ${serial} not found`);
    res.json(commandViewSchema.parse(commandView(row)));
  });

  return router;
}

const json = (description: string, schema: z.ZodType): ResponseConfig => ({ description, content: { 'application/json': { schema } } });

export function registerCommandPaths(registry: OpenAPIRegistry, secured: Record<string, string[]>[]): void {
  const error = (description: string) => json(description, errorSchema);
  registry.registerPath({
    method: 'post',
    path: '/v1/devices/{serial}/commands',
    summary: 'Send a command to a robot (scope operate); follow it with GET .../commands/{commandId}',
    security: secured,
    request: { params: serialParamsSchema, body: { required: true, content: { 'application/json': { schema: sendCommandBodySchema } } } },
    responses: {
      202: json('Accepted: published on robot/<serial>/command as soon as a worker runs it', sendCommandResponseSchema),
      200: json('The command this requestId made before', sendCommandResponseSchema),
      400: error('Invalid input; the message names the field'),
      401: error('Missing or unknown x-api-key'),
      403: error('The API key lacks the scope'),
      404: error('No such device'),
    },
  });
  registry.registerPath({
    method: 'get',
    path: '/v1/devices/{serial}/commands/{commandId}',
    summary: 'A command and how far it got: PENDING, SENT, ACKNOWLEDGED, EXECUTED, FAILED or TIMEOUT',
    security: secured,
    request: { params: commandParamsSchema },
    responses: {
      200: json('The command', commandViewSchema),
      400: error('Invalid input; the message names the field'),
      401: error('Missing or unknown x-api-key'),
      403: error('The API key lacks the scope'),
      404: error('No such command'),
    },
  });
}
