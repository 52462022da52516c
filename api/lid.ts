import { randomUUID } from 'node:crypto';
import type { OpenAPIRegistry, ResponseConfig } from '@asteasolutions/zod-to-openapi';
import { Router } from 'express';
import { z } from 'zod';
import { clearUnlockPin, judgePinEntry, listLidCycles, readLidCycle, readUnlockPin, setUnlockPin, type LidCycleRow } from '../store/lid';
import { serialSchema } from '../domain/heartbeat';
import { declarePattern } from '../domain/json-schema';
import { lidCycleStatuses, lidSettings, pinEntrySources, pinFlows, pinOutcomes, pinTypes, type PinFlow } from '../domain/lid';
import { hashPin, pinHashSecret } from '../domain/lid-pins';
import { seedEnum } from '../domain/seed-enum';
import { requireScope } from './auth';
import { issueCommand, requireDevice, type CommandDeps } from './commands';
import { ApiError, invalidArgument, notFound, parseInput } from './errors';
import { decodePageToken, encodePageToken } from './page-token';
import { errorSchema, pageTokenSchema } from './schemas';

/**
 * The Lid Service's routes: a robot's unlock PIN (set, clear, show, validate) and its lid cycles.
 * A PIN is hashed (domain/lid-pins.ts) the moment it is parsed; no answer contains it.
 */

const timestamp = z.string().describe('RFC 3339 timestamp');
const MAX_PIN_LIFETIME_MS = 30 * 24 * 3600 * 1000;

const pinSchema = z.string().regex(/^\d{2,10}$/, 'must be 2 to 10 digits');

/** Also accepts the seed's enum names (UNLOCK_PIN_TYPE_MERCHANT). */
const pinTypeSchema = seedEnum(pinTypes, 'UNLOCK_PIN_TYPE_');

export const setUnlockPinBodySchema = z.object({
  pin: pinSchema,
  pinType: pinTypeSchema,
  contextId: z.string().min(1).max(255).describe('the delivery, trip or task the PIN belongs to'),
  expiresAt: declarePattern(z.iso.datetime({ offset: true, message: 'must be an RFC 3339 timestamp' })).describe('in the future, and within 30 days'),
  flow: z.enum(pinFlows).optional().describe('magic-lid also pushes the PIN to the robot (SET_PIN); default LID_PIN_FLOW'),
});

export const validatePinBodySchema = z.object({ pin: pinSchema });

const serialParamsSchema = z.object({ serial: serialSchema });
const cycleParamsSchema = z.object({ cycleId: declarePattern(z.uuid('must be a lid cycle id (UUID)')) });

export const listLidCyclesQuerySchema = z.object({
  pageSize: z.coerce.number().int().min(1).max(100).default(20),
  pageToken: pageTokenSchema(200),
});

export const setUnlockPinResponseSchema = z.object({
  success: z.literal(true),
  pinType: z.enum(pinTypes),
  contextId: z.string(),
  expiresAt: timestamp,
  flow: z.enum(pinFlows),
  setPinCommandId: z.string().nullable().describe('the SET_PIN command of the magic-lid flow'),
});

export const clearUnlockPinResponseSchema = z.object({
  success: z.literal(true),
  cleared: z.boolean().describe('false when no PIN was set'),
  clearPinCommandId: z.string().nullable().describe('the SET_PIN clear command of the magic-lid flow'),
});

export const lockoutSchema = z.object({
  locked: z.boolean(),
  lockedUntil: timestamp.nullable(),
  failedAttempts: z.number().int().describe('wrong entries in the current window'),
  attemptsLeft: z.number().int(),
});

export const unlockPinStatusSchema = z
  .object({
    serial: z.string(),
    activePin: z
      .object({ pinType: z.enum(pinTypes), contextId: z.string().nullable(), flow: z.enum(pinFlows), expiresAt: timestamp, expired: z.boolean(), setAt: timestamp })
      .nullable(),
    lockout: lockoutSchema,
  })
  .meta({ id: 'UnlockPinStatus' });

export const validatePinResponseSchema = z.object({
  valid: z.boolean(),
  pinType: z.enum(pinTypes).optional(),
  contextId: z.string().optional(),
});

export const lidCycleSchema = z
  .object({
    cycleId: z.string(),
    serial: z.string(),
    contextId: z.string().nullable(),
    pinType: z.enum(pinTypes).nullable().describe('of the PIN that unlocked the lid'),
    forced: z.boolean().describe('opened with no unlock command before it'),
    unlockCommandId: z.string().nullable(),
    status: z.enum(lidCycleStatuses),
    startedAt: timestamp,
    endedAt: timestamp.nullable().describe('when the lid closed; also set for a timed-out cycle once it closes'),
    durationSeconds: z.number().nullable(),
    timeoutSeconds: z.number(),
    pinEntries: z.array(
      z.object({
        entryId: z.string(),
        source: z.enum(pinEntrySources),
        enteredAt: timestamp,
        outcome: z.enum(pinOutcomes),
        success: z.boolean(),
        pinType: z.enum(pinTypes).nullable(),
      }),
    ).describe('the entries that led to the opening; never the PIN'),
  })
  .meta({ id: 'LidCycle' });

export const listLidCyclesResponseSchema = z.object({
  lidCycles: z.array(lidCycleSchema),
  nextPageToken: z.string().describe('empty on the last page'),
});

type Deps = CommandDeps;

export function lidRoutes(deps: Deps): Router {
  const router = Router();
  const settings = lidSettings(deps.config);
  const secret = pinHashSecret(deps.config);

  router.put('/v1/devices/:serial/unlock-pin', requireScope('operate'), async (req, res) => {
    const { serial } = parseInput(serialParamsSchema, req.params);
    const body = parseInput(setUnlockPinBodySchema, req.body ?? {});
    const expiresAt = Date.parse(body.expiresAt);
    if (expiresAt <= Date.now()) throw invalidArgument('expiresAt', 'must be in the future');
    if (expiresAt > Date.now() + MAX_PIN_LIFETIME_MS) throw invalidArgument('expiresAt', 'must be within 30 days');
    await requireDevice(deps.prisma, serial);
    const flow: PinFlow = body.flow ?? deps.config.LID_PIN_FLOW;
    await setUnlockPin(deps.prisma, { serial, pinHash: hashPin(secret, serial, body.pin), pinType: body.pinType, contextId: body.contextId, expiresAt, flow });
    const command =
      flow === 'magic-lid'
        ? await issueCommand(deps, {
            serial,
            type: 'SET_PIN',
            parameters: { pin: body.pin, pinType: body.pinType, contextId: body.contextId, expiresAt: String(expiresAt) },
            requestId: null,
            timeoutMs: settings.commandTimeoutMs,
            source: 'UNLOCK_PIN',
            contextId: body.contextId,
          })
        : null;
    res.json(
      setUnlockPinResponseSchema.parse({
        success: true,
        pinType: body.pinType,
        contextId: body.contextId,
        expiresAt: new Date(expiresAt).toISOString(),
        flow,
        setPinCommandId: command?.command.commandId ?? null,
      }),
    );
  });

  router.delete('/v1/devices/:serial/unlock-pin', requireScope('operate'), async (req, res) => {
    const { serial } = parseInput(serialParamsSchema, req.params);
    await requireDevice(deps.prisma, serial);
    const flow = await clearUnlockPin(deps.prisma, serial);
    const command =
      flow === 'magic-lid'
        ? await issueCommand(deps, { serial, type: 'SET_PIN', parameters: { clear: 'true' }, requestId: null, timeoutMs: settings.commandTimeoutMs, source: 'UNLOCK_PIN' })
        : null;
    res.json(clearUnlockPinResponseSchema.parse({ success: true, cleared: flow !== null, clearPinCommandId: command?.command.commandId ?? null }));
  });

  router.get('/v1/devices/:serial/unlock-pin', requireScope('read'), async (req, res) => {
    const { serial } = parseInput(serialParamsSchema, req.params);
    await requireDevice(deps.prisma, serial);
    const status = await readUnlockPin(deps.prisma, serial, settings.lockout, Date.now());
    res.json(unlockPinStatusSchema.parse({ serial, ...status, lockout: { ...status.lockout, lockedUntil: isoOrNull(status.lockout.lockedUntil) } }));
  });

  router.post('/v1/devices/:serial/unlock-pin/validate', requireScope('operate'), async (req, res) => {
    const { serial } = parseInput(serialParamsSchema, req.params);
    const { pin } = parseInput(validatePinBodySchema, req.body ?? {});
    await requireDevice(deps.prisma, serial);
    const result = await judgePinEntry(deps.prisma, {
      entryId: randomUUID(),
      serial,
      source: 'API',
      pinHash: hashPin(secret, serial, pin),
      robotTimestamp: null,
      at: Date.now(),
      policy: settings.lockout,
      unlock: null,
      eventIds: [randomUUID(), randomUUID()],
    });
    if (result.outcome === 'LOCKED') {
      const until = result.lockedUntil ?? Date.now();
      res.set('Retry-After', String(Math.max(1, Math.ceil((until - Date.now()) / 1000))));
      throw new ApiError(429, 'RESOURCE_EXHAUSTED', `PIN entry on ${serial} is locked until ${new Date(until).toISOString()} after repeated wrong PINs`, {
        lockedUntil: new Date(until).toISOString(),
      });
    }
    res.json(
      validatePinResponseSchema.parse(
        result.outcome === 'VALID' ? { valid: true, pinType: result.pinType, contextId: result.contextId ?? undefined } : { valid: false },
      ),
    );
  });

  router.get('/v1/devices/:serial/lid-cycles', requireScope('read'), async (req, res) => {
    const { serial } = parseInput(serialParamsSchema, req.params);
    const query = parseInput(listLidCyclesQuerySchema, req.query);
    const after = query.pageToken === undefined ? undefined : decodeCycleToken(query.pageToken);
    const rows = await listLidCycles(deps.prisma, serial, { after, take: query.pageSize + 1 });
    const page = rows.slice(0, query.pageSize);
    const last = page[page.length - 1];
    const nextPageToken = rows.length > query.pageSize ? encodePageToken(`${last.startedAt.getTime()}_${last.cycleId}`) : '';
    res.json(listLidCyclesResponseSchema.parse({ lidCycles: page.map(lidCycleView), nextPageToken }));
  });

  router.get('/v1/lid-cycles/:cycleId', requireScope('read'), async (req, res) => {
    const { cycleId } = parseInput(cycleParamsSchema, req.params);
    const row = await readLidCycle(deps.prisma, cycleId);
    if (!row) throw notFound(`lid cycle ${cycleId} not found`);
    res.json(lidCycleSchema.parse(lidCycleView(row)));
  });

  return router;
}

const isoOrNull = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

function decodeCycleToken(token: string): { startedAt: Date; cycleId: string } {
  const isKey = (key: string) => /^\d{1,15}_[0-9a-f-]{36}$/.test(key);
  const [ms, cycleId] = decodePageToken(token, isKey).split('_');
  return { startedAt: new Date(Number(ms)), cycleId };
}

function lidCycleView(row: LidCycleRow): z.infer<typeof lidCycleSchema> {
  return {
    cycleId: row.cycleId,
    serial: row.serialNumber,
    contextId: row.contextId,
    pinType: row.pinType as z.infer<typeof lidCycleSchema>['pinType'],
    forced: row.forced,
    unlockCommandId: row.unlockCommandId,
    status: row.status as z.infer<typeof lidCycleSchema>['status'],
    startedAt: row.startedAt.toISOString(),
    endedAt: isoOrNull(row.endedAt?.getTime() ?? null),
    durationSeconds: row.endedAt ? (row.endedAt.getTime() - row.startedAt.getTime()) / 1000 : null,
    timeoutSeconds: row.timeoutSeconds,
    pinEntries: row.pinEntries.map((e) => ({
      entryId: e.id,
      source: e.source as 'KEYPAD' | 'API',
      enteredAt: e.enteredAt.toISOString(),
      outcome: e.outcome as z.infer<typeof lidCycleSchema>['pinEntries'][number]['outcome'],
      success: e.success,
      pinType: e.pinType as z.infer<typeof lidCycleSchema>['pinType'],
    })),
  };
}

const json = (description: string, schema: z.ZodType): ResponseConfig => ({ description, content: { 'application/json': { schema } } });

export function registerLidPaths(registry: OpenAPIRegistry, secured: Record<string, string[]>[]): void {
  const error = (description: string) => json(description, errorSchema);
  const errors = {
    400: error('Invalid input; the message names the field'),
    401: error('Missing or unknown x-api-key'),
    403: error('The API key lacks the scope'),
    404: error('No such device or lid cycle'),
  };
  const body = (schema: z.ZodType) => ({ required: true, content: { 'application/json': { schema } } });
  registry.registerPath({
    method: 'put',
    path: '/v1/devices/{serial}/unlock-pin',
    summary: "Set the robot's one unlock PIN (scope operate); magic-lid also sends it to the robot as SET_PIN",
    security: secured,
    request: { params: serialParamsSchema, body: body(setUnlockPinBodySchema) },
    responses: { 200: json('Set', setUnlockPinResponseSchema), ...errors },
  });
  registry.registerPath({
    method: 'delete',
    path: '/v1/devices/{serial}/unlock-pin',
    summary: "Clear the robot's unlock PIN (scope operate)",
    security: secured,
    request: { params: serialParamsSchema },
    responses: { 200: json('Cleared', clearUnlockPinResponseSchema), ...errors },
  });
  registry.registerPath({
    method: 'get',
    path: '/v1/devices/{serial}/unlock-pin',
    summary: 'Whether a PIN is set (never the PIN) and whether PIN entry is locked',
    security: secured,
    request: { params: serialParamsSchema },
    responses: { 200: json('PIN status', unlockPinStatusSchema), ...errors },
  });
  registry.registerPath({
    method: 'post',
    path: '/v1/devices/{serial}/unlock-pin/validate',
    summary: 'Check a PIN against the active one (scope operate); counts toward the brute-force lockout',
    security: secured,
    request: { params: serialParamsSchema, body: body(validatePinBodySchema) },
    responses: { 200: json('Valid or not', validatePinResponseSchema), ...errors, 429: error('PIN entry is locked; Retry-After says for how long') },
  });
  registry.registerPath({
    method: 'get',
    path: '/v1/devices/{serial}/lid-cycles',
    summary: "The robot's lid cycles, newest first",
    security: secured,
    request: { params: serialParamsSchema, query: listLidCyclesQuerySchema },
    responses: { 200: json('A page of lid cycles', listLidCyclesResponseSchema), ...errors },
  });
  registry.registerPath({
    method: 'get',
    path: '/v1/lid-cycles/{cycleId}',
    summary: 'One lid cycle',
    security: secured,
    request: { params: cycleParamsSchema },
    responses: { 200: json('The lid cycle', lidCycleSchema), ...errors },
  });
}
