import type { OpenAPIRegistry, ResponseConfig } from '@asteasolutions/zod-to-openapi';
import { Router } from 'express';
import { z } from 'zod';
import { updatableFields } from '../domain/device-parts';
import { requireScope } from './auth';
import { serialListSchema } from './batch-get-devices';
import type { DeviceUpdateStream } from './device-update-stream';
import { parseInput, unavailable } from './errors';
import { deviceResourceSchema, errorSchema } from './schemas';

/** `GET /v1/device-updates/stream?serials=A,B`: seed 001 StreamDeviceUpdates as Server-Sent Events (api/device-update-stream.ts). */

export const streamDeviceUpdatesQuerySchema = z.object({
  serials: serialListSchema.optional().describe('comma-separated serials, at most 1,000; without it, the whole fleet'),
});

/** What each message's `data` holds. */
export const deviceUpdateSchema = z
  .object({
    device: deviceResourceSchema,
    updatedFields: z.array(z.enum(updatableFields)).describe('the Device fields changed since the last update this stream sent for the robot'),
  })
  .meta({ id: 'DeviceUpdate' });

export function deviceUpdateRoutes(deps: { deviceUpdates?: DeviceUpdateStream }): Router {
  const router = Router();

  router.get('/v1/device-updates/stream', requireScope('read'), async (req, res) => {
    const { serials } = parseInput(streamDeviceUpdatesQuerySchema, req.query);
    if (!deps.deviceUpdates) throw unavailable('the device update stream is not running in this process');
    await deps.deviceUpdates.open(req, res, serials ? new Set(serials) : null);
  });

  return router;
}

export function registerDeviceUpdatePaths(registry: OpenAPIRegistry, secured: Record<string, string[]>[]): void {
  const json = (description: string, schema: z.ZodType): ResponseConfig => ({ description, content: { 'application/json': { schema } } });
  registry.registerPath({
    method: 'get',
    path: '/v1/device-updates/stream',
    summary: 'Device updates as heartbeats store them, as Server-Sent Events (seed StreamDeviceUpdates)',
    description:
      'Each message: `data: <DeviceUpdate JSON>`, `{ device, updatedFields }`, for each heartbeat batch that changes a listed robot (all robots ' +
      'without `serials`), from the moment the stream opens (read the current state with GET /v1/devices:batchGet). A client too slow to read ' +
      'skips ahead: it gets each robot\'s newest state once, with every field changed since what it was last sent. Comment lines keep an idle stream open.',
    security: secured,
    request: { query: streamDeviceUpdatesQuerySchema },
    responses: {
      200: { description: "The stream (text/event-stream); the schema is each message's data", content: { 'text/event-stream': { schema: deviceUpdateSchema } } },
      400: json('serials not serials, or more than 1,000', errorSchema),
      401: json('Missing or unknown x-api-key', errorSchema),
      403: json('The API key lacks the read scope', errorSchema),
      503: json('The stream cannot follow the fleet now; retry shortly', errorSchema),
    },
  });
}
