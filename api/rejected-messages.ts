import type { OpenAPIRegistry, ResponseConfig } from '@asteasolutions/zod-to-openapi';
import { Router } from 'express';
import { z } from 'zod';
import { serialSchema } from '../domain/heartbeat';
import type { Prisma as PrismaClient } from '../infra/prisma';
import { readRejectedMessages } from '../store/rejected-messages';
import { requireScope } from './auth';
import { parseInput } from './errors';
import { errorSchema, MAX_EVENT_LIMIT } from './schemas';

/**
 * `GET /v1/rejected-messages`: robot messages the ingest could not take as they were, with their
 * reason, paged by cursor like GET /v1/events. PINs were redacted before they were stored.
 */

export const listRejectedMessagesQuerySchema = z.object({
  serial: serialSchema.optional().describe("only this robot's (the serial its topic names)"),
  after: z
    .string()
    .regex(/^\d{1,18}$/, 'must be a cursor returned as nextCursor')
    .optional()
    .describe('nextCursor of the previous call: only later messages'),
  limit: z.coerce.number().int().min(1).max(MAX_EVENT_LIMIT).default(100),
});

export const rejectedMessageSchema = z
  .object({
    id: z.string().describe('orders the messages; a nextCursor'),
    topic: z.string(),
    serial: z.string().nullable().describe('the robot its topic names, if it names one'),
    reason: z.string().describe('the fields that failed and why'),
    applied: z.boolean().describe('true: the heartbeat was applied without the parts `reason` names; false: the whole message was rejected'),
    payload: z.string().describe('the message as received (a long one cut, its size noted), PINs redacted'),
    receivedAt: z.string().describe('RFC 3339 timestamp'),
  })
  .meta({ id: 'RejectedMessage' });

export const listRejectedMessagesResponseSchema = z.object({
  rejectedMessages: z.array(rejectedMessageSchema),
  nextCursor: z.string().nullable().describe('pass as `after` to read on; null when there are none yet'),
});

export function rejectedMessageRoutes(deps: { prisma: PrismaClient }): Router {
  const router = Router();

  router.get('/v1/rejected-messages', requireScope('read'), async (req, res) => {
    const query = parseInput(listRejectedMessagesQuerySchema, req.query);
    const rows = await readRejectedMessages(deps.prisma, query.after === undefined ? undefined : BigInt(query.after), { serial: query.serial }, query.limit);
    // The cursor stays put on an empty page, so a poller can keep asking with it.
    const nextCursor = rows.length > 0 ? String(rows[rows.length - 1].id) : (query.after ?? null);
    res.json(
      listRejectedMessagesResponseSchema.parse({
        rejectedMessages: rows.map((r) => ({ ...r, id: String(r.id), receivedAt: r.receivedAt.toISOString() })),
        nextCursor,
      }),
    );
  });

  return router;
}

export function registerRejectedMessagePaths(registry: OpenAPIRegistry, secured: Record<string, string[]>[]): void {
  const json = (description: string, schema: z.ZodType): ResponseConfig => ({ description, content: { 'application/json': { schema } } });
  registry.registerPath({
    method: 'get',
    path: '/v1/rejected-messages',
    summary: 'Robot messages rejected, whole or in part, with their reason (PINs redacted), oldest first',
    security: secured,
    request: { query: listRejectedMessagesQuerySchema },
    responses: {
      200: json('Rejected messages after the cursor', listRejectedMessagesResponseSchema),
      400: json('Invalid input; the message names the field', errorSchema),
      401: json('Missing or unknown x-api-key', errorSchema),
      403: json('The API key lacks the read scope', errorSchema),
    },
  });
}
