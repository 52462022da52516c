import { z } from 'zod';
import { deviceSchema } from '../domain/device';
import { domainEventSchema } from '../domain/events';
import { serialSchema } from '../domain/heartbeat';

/** Request and response shapes: the routes validate with these and /openapi.json is generated from them. */

export const MAX_PAGE_SIZE = 500;
export const MAX_EVENT_LIMIT = 1000;

// `id` names the OpenAPI component each is referenced by.
export const deviceResourceSchema = deviceSchema.meta({ id: 'Device' });
export const domainEventResourceSchema = domainEventSchema.meta({ id: 'DomainEvent' });

export const errorSchema = z
  .object({
    error: z.object({
      code: z.string().describe('e.g. INVALID_ARGUMENT, UNAUTHENTICATED, PERMISSION_DENIED, NOT_FOUND, METHOD_NOT_ALLOWED, PAYLOAD_TOO_LARGE, UNAVAILABLE'),
      message: z.string().describe('for 400, starts with the offending field: "<field>: <problem>"'),
      details: z.unknown().optional(),
    }),
  })
  .meta({ id: 'Error' });

export const deviceParamsSchema = z.object({ serial: serialSchema });

export const getDeviceQuerySchema = z.object({
  fresh: z.enum(['true', 'false']).optional().describe("true: read the robot workflow's live state"),
});

/**
 * A filter is a small language (docs/api.md, "Filters"), declared as `format: filter` with examples; a
 * page token is opaque, declared as `format: page-token`. A value that does not parse is a 400.
 */
export const filterSchema = (examples: string[], description: string) =>
  z.string().max(2000).meta({ format: 'filter', examples }).optional().describe(description);
export const pageTokenSchema = (maxLength: number, description = 'nextPageToken of the previous page') =>
  z.string().max(maxLength).meta({ format: 'page-token' }).optional().describe(`${description}; any other value is a 400`);

export const listDevicesQuerySchema = z.object({
  filter: filterSchema(['online=true AND batteryPercent<20', 'serial=ABC123'], 'e.g. `online=true AND batteryPercent<20`; fields: serial, online, lidOpen, batteryPercent, networkType'),
  pageSize: z.coerce.number().int().min(1).max(MAX_PAGE_SIZE).default(50),
  pageToken: pageTokenSchema(200),
});

export const listDevicesResponseSchema = z.object({
  devices: z.array(deviceResourceSchema),
  nextPageToken: z.string().describe('empty on the last page'),
  totalSize: z.number().int().describe('devices matching the filter'),
});

export const listEventsQuerySchema = z.object({
  type: z.string().min(1).max(100).optional().describe('e.g. Device.ConnectivityChanged'),
  serial: serialSchema.optional(),
  after: z
    .string()
    .regex(/^\d{1,18}$/, 'must be a cursor returned as nextCursor')
    .optional()
    .describe('nextCursor of the previous call: only later events'),
  limit: z.coerce.number().int().min(1).max(MAX_EVENT_LIMIT).default(100),
});

export const listEventsResponseSchema = z.object({
  events: z.array(domainEventResourceSchema),
  nextCursor: z.string().nullable().describe('pass as `after` to read on; null when there are no events yet'),
});

const eventCursor = z.string().regex(/^\d{1,18}$/, 'must be an event id the stream sent (or a nextCursor)');

export const streamEventsQuerySchema = z.object({
  type: listEventsQuerySchema.shape.type,
  serial: listEventsQuerySchema.shape.serial,
  after: eventCursor.optional().describe('start after this event (the SSE `id`, or a nextCursor); default: from now on'),
});

export const streamEventsHeadersSchema = z.object({
  'Last-Event-ID': eventCursor.optional().describe('sent by a reconnecting EventSource; wins over `after`'),
});

export const healthSchema = z.object({ status: z.literal('ok') });

export const readySchema = z.object({
  status: z.literal('ok'),
  checks: z.object({ postgres: z.literal('ok'), temporal: z.literal('ok') }),
});
