import { Router } from 'express';
import type { Prisma as PrismaClient } from '../infra/prisma';
import { readEvents } from '../store/events';
import { requireScope } from './auth';
import { parseInput, unavailable } from './errors';
import type { EventStream } from './event-stream';
import { listEventsQuerySchema, listEventsResponseSchema, streamEventsHeadersSchema, streamEventsQuerySchema } from './schemas';
import { resumeAfter } from './sse';

export function eventRoutes(deps: { prisma: PrismaClient; eventStream?: EventStream }): Router {
  const router = Router();

  router.get('/v1/events', requireScope('read'), async (req, res) => {
    const query = parseInput(listEventsQuerySchema, req.query);
    const after = query.after === undefined ? undefined : BigInt(query.after);
    const rows = await readEvents(deps.prisma, after, { type: query.type, serial: query.serial }, query.limit);
    // The cursor stays put on an empty page, so a poller can keep asking with it.
    const nextCursor = rows.length > 0 ? String(rows[rows.length - 1].seq) : (query.after ?? null);
    res.json(listEventsResponseSchema.parse({ events: rows.map(({ seq: _seq, ...event }) => event), nextCursor }));
  });

  router.get('/v1/events/stream', requireScope('read'), async (req, res) => {
    const query = parseInput(streamEventsQuerySchema, req.query);
    const headers = parseInput(streamEventsHeadersSchema, { 'Last-Event-ID': req.get('last-event-id') || undefined });
    if (!deps.eventStream) throw unavailable('the event stream is not running in this process');
    await deps.eventStream.open(req, res, {
      after: resumeAfter(headers['Last-Event-ID'], query.after),
      filter: { type: query.type, serial: query.serial },
    });
  });

  return router;
}
