import { OpenAPIRegistry, OpenApiGeneratorV3, type ResponseConfig } from '@asteasolutions/zod-to-openapi';
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
  registerBatchGetDevicePaths(registry, secured);
  registerDeviceUpdatePaths(registry, secured);
  registerRejectedMessagePaths(registry, secured);

  return new OpenApiGeneratorV3(registry.definitions).generateDocument({
    openapi: '3.0.3',
    info: { title: 'Fleet backend', version: '1.0.0', description: 'Delivery robot fleet API (see CONTRACT.md)' },
  });
}
