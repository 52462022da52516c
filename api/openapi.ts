import { OpenAPIRegistry, OpenApiGeneratorV31, type ResponseConfig } from '@asteasolutions/zod-to-openapi';
import { z } from 'zod';
import {
  deviceParamsSchema,
  deviceResourceSchema,
  errorSchema,
  getDeviceQuerySchema,
  healthSchema,
  listDevicesQuerySchema,
  listDevicesResponseSchema,
  listEventsQuerySchema,
  listEventsResponseSchema,
  streamEventsHeadersSchema,
  streamEventsQuerySchema,
  readySchema,
} from './schemas';
import { registerBatchGetDevicePaths } from './batch-get-devices';
import { registerCommandPaths } from './commands';
import { registerDeviceUpdatePaths } from './device-updates';
import { registerRejectedMessagePaths } from './rejected-messages';
import { registerLidPaths } from './lid';
import { registerGreengrassPaths } from './deployments';
import { registerDriveuPaths } from './driveu';
import { registerFleetDevicePaths } from './fleet-devices';
import { registerOperationsEventPaths } from './operations-events';
import { registerPartnerPaths } from './partners';

/** The OpenAPI document, generated from the zod schemas the routes validate with. */

const json = (description: string, schema: z.ZodType): ResponseConfig => ({
  description,
  content: { 'application/json': { schema } },
});

export function buildOpenApiDocument(): object {
  const registry = new OpenAPIRegistry();
  const apiKey = registry.registerComponent('securitySchemes', 'ApiKey', { type: 'apiKey', in: 'header', name: 'x-api-key' });
  const secured = [{ [apiKey.name]: [] }];

  const errors = (...statuses: number[]) => {
    const meaning: Record<number, string> = {
      400: 'Invalid input; the message names the field',
      401: 'Missing or unknown x-api-key',
      403: 'The API key lacks the scope',
      404: 'Not found',
      503: 'A dependency is unavailable',
    };
    return Object.fromEntries(statuses.map((s) => [s, json(meaning[s], errorSchema)]));
  };

  registry.registerPath({
    method: 'get',
    path: '/v1/devices/{serial}',
    summary: 'One device from the projection, or live from its robot workflow with fresh=true',
    security: secured,
    request: { params: deviceParamsSchema, query: getDeviceQuerySchema },
    responses: { 200: json('The device', deviceResourceSchema), ...errors(400, 401, 403, 404, 503) },
  });
  registry.registerPath({
    method: 'get',
    path: '/v1/devices',
    summary: 'Devices ordered by serial, filtered and paged',
    security: secured,
    request: { query: listDevicesQuerySchema },
    responses: {
      200: json('A page of devices', listDevicesResponseSchema),
      ...errors(400, 401, 403),
    },
  });
  registry.registerPath({
    method: 'get',
    path: '/v1/events',
    summary: 'Domain events in the order they were recorded',
    security: secured,
    request: { query: listEventsQuerySchema },
    responses: {
      200: json('Events after the cursor', listEventsResponseSchema),
      ...errors(400, 401, 403),
    },
  });
  registry.registerPath({
    method: 'get',
    path: '/v1/events/stream',
    summary: 'Domain events as they are recorded, as Server-Sent Events; resumable with Last-Event-ID',
    description:
      'Each message: `id: <seq>`, `event: <type>`, `data: <DomainEvent JSON>`. Without `after` or Last-Event-ID the stream starts ' +
      'at the newest event. Comment lines keep an idle stream open. A client too slow to read is disconnected and resumes with Last-Event-ID.',
    security: secured,
    request: { query: streamEventsQuerySchema, headers: streamEventsHeadersSchema },
    responses: {
      200: { description: 'The stream (text/event-stream)', content: { 'text/event-stream': { schema: z.string() } } },
      ...errors(400, 401, 403, 503),
    },
  });
  registry.registerPath({
    method: 'get',
    path: '/healthz',
    summary: 'The process is alive',
    security: [],
    responses: { 200: json('Alive', healthSchema) },
  });
  registry.registerPath({
    method: 'get',
    path: '/readyz',
    summary: 'PostgreSQL and Temporal answer within 2 s',
    security: [],
    responses: { 200: json('Ready', readySchema), ...errors(503) },
  });
  registry.registerPath({
    method: 'get',
    path: '/metrics',
    summary: 'Prometheus metrics',
    security: [],
    responses: { 200: { description: 'Prometheus text format', content: { 'text/plain': { schema: z.string() } } } },
  });
  registry.registerPath({
    method: 'get',
    path: '/openapi.json',
    summary: 'This document',
    security: [],
    responses: { 200: { description: 'OpenAPI 3 document', content: { 'application/json': { schema: z.object({}).passthrough() } } } },
  });

  registerGreengrassPaths(registry, secured);
  registerLidPaths(registry, secured);
  registerCommandPaths(registry, secured);
  registerFleetDevicePaths(registry, secured);
  registerOperationsEventPaths(registry, secured);
  registerDriveuPaths(registry, secured);
  registerPartnerPaths(registry, secured);
  registerBatchGetDevicePaths(registry, secured);
  registerDeviceUpdatePaths(registry, secured);
  registerRejectedMessagePaths(registry, secured);

  const document = new OpenApiGeneratorV31(registry.definitions).generateDocument({
    openapi: '3.1.0',
    info: {
      title: 'Fleet backend',
      version: '1.0.0',
      description:
        'Delivery robot fleet API (see CONTRACT.md). No string may hold U+0000, and string lengths count UTF-16 code units, as JavaScript does. ' +
        'A method a known path does not serve is a 405 METHOD_NOT_ALLOWED whose Allow header lists the ones it does.',
    },
  });
  return withAnswersOfEveryRoute(document, apiKey.name);
}

/**
 * Answers that do not depend on the route, added to each operation that does not list them: any
 * request may carry a JSON body (400 naming `body` when it does not parse, 413 over 100 kb), and a
 * route behind the API key answers 401 and 403, and 503 while PostgreSQL or Temporal is unreachable.
 */
function withAnswersOfEveryRoute<T extends object>(document: T, apiKeyScheme: string): T {
  const paths = (document as { paths?: Record<string, Record<string, { security?: object[]; responses?: Record<string, unknown> }>> }).paths ?? {};
  const error = (description: string) => ({ description, content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } });
  for (const operations of Object.values(paths)) {
    for (const operation of Object.values(operations)) {
      const responses = (operation.responses ??= {});
      const answers: Record<string, string> = {
        400: 'Invalid input; the message names the field (`body` for a body that is not JSON)',
        413: 'The body is over the limit: 100 kb of JSON (16 KiB for the DriveU webhook)',
      };
      if (operation.security?.some((s) => apiKeyScheme in s)) {
        Object.assign(answers, { 401: 'Missing or unknown x-api-key', 403: 'The API key lacks the scope', 503: 'PostgreSQL or Temporal is unavailable; retry shortly' });
      }
      for (const [status, description] of Object.entries(answers)) responses[status] ??= error(description);
    }
  }
  return document;
}
