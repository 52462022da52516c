import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { OpenAPIRegistry, ResponseConfig } from '@asteasolutions/zod-to-openapi';
import express, { Router } from 'express';
import { z } from 'zod';
import { driveuWebhookEventSchema, isStreamerReport, type DriveuReport } from '../domain/driveu';
import { serialSchema } from '../domain/heartbeat';
import { assignDriveuUnit, readLastStreamerReport, recordDriveuEvent } from '../store/driveu';
import { signalDriveuReport } from '../clients/robots';
import { requireScope } from './auth';
import { invalidArgument, parseInput, unauthenticated, unavailable } from './errors';
import { robotStart, type FleetRouteDeps } from './operations-events';
import { errorSchema } from './schemas';

/**
 * DriveU: the status webhook (signed with DRIVEU_WEBHOOK_SECRET, no API key) and the registry of
 * which DriveU unit belongs to which robot. Every signed event is kept in `driveu_events`; one from
 * a robot's streamer is signalled to the robot workflow, which records it on the device.
 */

const SIGNATURE_HEADER = 'x-driveu-signature';
const MAX_WEBHOOK_BYTES = 16 * 1024;

let generatedSecret: string | undefined;

/** The process's development secret, used when DRIVEU_WEBHOOK_SECRET is unset; npm start prints its own. */
export function developmentDriveuSecret(): string {
  generatedSecret ??= `dev-driveu-${randomBytes(24).toString('base64url')}`;
  return generatedSecret;
}

export const driveuSignature = (secret: string, rawBody: Buffer | string) => `sha256=${createHmac('sha256', secret).update(rawBody).digest('hex')}`;

function signatureMatches(secret: string, rawBody: Buffer, header: string | undefined): boolean {
  if (!header) return false;
  const expected = Buffer.from(driveuSignature(secret, rawBody));
  const given = Buffer.from(header.trim());
  return given.length === expected.length && timingSafeEqual(given, expected);
}

export const driveuWebhookResponseSchema = z.object({
  accepted: z.literal(true),
  serial: z.string().nullable().describe('the robot the unit belongs to; null for a uuid no robot claims (the event is kept)'),
  applied: z.boolean().describe("whether the event was signalled to the robot workflow (a robot's streamer status)"),
});

export const driveuUnitBodySchema = z.object({ uuid: z.string().min(1).max(100) });
export const driveuUnitResponseSchema = z.object({ serial: z.string(), uuid: z.string(), updatedAt: z.string() });
const serialParamsSchema = z.object({ serial: serialSchema });

/** Mounted before express.json: the signature covers the raw bytes, so they must reach us untouched. */
export function driveuWebhookRoutes(deps: FleetRouteDeps): Router {
  const router = Router();
  const secret = deps.config.DRIVEU_WEBHOOK_SECRET ?? developmentDriveuSecret();

  router.post('/v1/webhooks/driveu', express.raw({ type: () => true, limit: MAX_WEBHOOK_BYTES }), async (req, res) => {
    const raw = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    if (!signatureMatches(secret, raw, req.get(SIGNATURE_HEADER))) throw unauthenticated(`missing or wrong ${SIGNATURE_HEADER}`);
    const event = parseInput(driveuWebhookEventSchema, parseJson(raw));
    const serial = await recordDriveuEvent(deps.prisma, event);
    const report: DriveuReport = { uuid: event.uuid, unit: event.unit, eventName: event.eventName, status: event.status, timeMicros: event.time };
    const applied = serial !== null && isStreamerReport(report);
    if (applied) await signalDriveu(deps, serial, report);
    res.status(202).json(driveuWebhookResponseSchema.parse({ accepted: true, serial, applied }));
  });

  return router;
}

/** PUT /v1/devices/{serial}/driveu-unit: a unit belongs to one robot, a robot has one unit. */
export function driveuUnitRoutes(deps: FleetRouteDeps): Router {
  const router = Router();

  router.put('/v1/devices/:serial/driveu-unit', requireScope('operate'), async (req, res) => {
    const { serial } = parseInput(serialParamsSchema, req.params);
    const { uuid } = parseInput(driveuUnitBodySchema, req.body);
    const unit = await assignDriveuUnit(deps.prisma, serial, uuid);
    // DriveU reports only changes: the unit's last report, if it came before this, is the robot's status now.
    const last = await readLastStreamerReport(deps.prisma, uuid);
    if (last) await signalDriveu(deps, serial, last);
    res.json(driveuUnitResponseSchema.parse({ serial: unit.serialNumber, uuid: unit.uuid, updatedAt: unit.updatedAt.toISOString() }));
  });

  return router;
}

async function signalDriveu(deps: FleetRouteDeps, serial: string, report: DriveuReport): Promise<void> {
  try {
    await signalDriveuReport(deps.temporal, robotStart(deps), serial, report);
  } catch (error) {
    deps.logger.warn({ err: error, serial }, 'signalling a DriveU report failed');
    throw unavailable('the event is kept, but the robot workflow could not be signalled: send it again');
  }
}

function parseJson(raw: Buffer): unknown {
  try {
    return JSON.parse(raw.toString('utf8'));
  } catch {
    throw invalidArgument('body', 'not valid JSON');
  }
}

export function registerDriveuPaths(registry: OpenAPIRegistry, secured: Record<string, string[]>[]): void {
  const json = (description: string, schema: z.ZodType): ResponseConfig => ({ description, content: { 'application/json': { schema } } });
  const signature = registry.registerComponent('securitySchemes', 'DriveuSignature', {
    type: 'apiKey',
    in: 'header',
    name: SIGNATURE_HEADER,
    description: 'sha256=<hex HMAC-SHA256 of the raw body with DRIVEU_WEBHOOK_SECRET>',
  });
  registry.registerPath({
    method: 'post',
    path: '/v1/webhooks/driveu',
    summary: `DriveU status webhook (IWebhookEvent, time in microseconds); header ${SIGNATURE_HEADER}: sha256=<hex HMAC-SHA256 of the raw body with DRIVEU_WEBHOOK_SECRET>`,
    security: [{ [signature.name]: [] }],
    request: { body: { required: true, content: { 'application/json': { schema: driveuWebhookEventSchema } } } },
    responses: {
      202: json('Kept; signalled to the robot workflow when a robot claims the unit', driveuWebhookResponseSchema),
      400: json('Invalid input; the message names the field', errorSchema),
      401: json('Missing or wrong signature', errorSchema),
      503: json('Kept, but the robot workflow could not be signalled: send it again', errorSchema),
    },
  });
  registry.registerPath({
    method: 'put',
    path: '/v1/devices/{serial}/driveu-unit',
    summary: 'Which DriveU unit (uuid) belongs to the robot (scope operate); a unit moves from any robot that had it',
    security: secured,
    request: { params: serialParamsSchema, body: { required: true, content: { 'application/json': { schema: driveuUnitBodySchema } } } },
    responses: {
      200: json('The mapping', driveuUnitResponseSchema),
      400: json('Invalid input; the message names the field', errorSchema),
      401: json('Missing or unknown x-api-key', errorSchema),
      403: json('The API key lacks the operate scope', errorSchema),
    },
  });
}
