import { Client, Connection } from '@temporalio/client';
import pino from 'pino';
import { createApp } from '../../api/app';
import { loadConfig } from '../../config';
import type { Prisma } from '../../infra/prisma';

/**
 * Every route of the API and who may call it: the one list the access and fuzz tests are driven
 * from. `expressRoutes()` and `openApiRoutes()` read what the app really serves and documents, so a
 * route added to either without a line here fails test/access.test.ts.
 */

export type Access = 'read' | 'operate' | 'deploy' | 'signature' | 'public';
export type Method = 'GET' | 'POST' | 'PUT' | 'DELETE';
/** `partner`: a key with a `partner:<provider>` scope reaches it too (and no other route). */
export type RouteSpec = { method: Method; path: string; access: Access; partner?: true };

export const routes: RouteSpec[] = [
  { method: 'GET', path: '/healthz', access: 'public' },
  { method: 'GET', path: '/readyz', access: 'public' },
  { method: 'GET', path: '/metrics', access: 'public' },
  { method: 'GET', path: '/openapi.json', access: 'public' },
  { method: 'POST', path: '/v1/webhooks/driveu', access: 'signature' },
  { method: 'GET', path: '/v1/devices', access: 'read' },
  { method: 'GET', path: '/v1/devices/{serial}', access: 'read' },
  { method: 'GET', path: '/v1/devices:batchGet', access: 'read' },
  { method: 'GET', path: '/v1/device-updates/stream', access: 'read' },
  { method: 'GET', path: '/v1/rejected-messages', access: 'read' },
  { method: 'GET', path: '/v1/events', access: 'read' },
  { method: 'GET', path: '/v1/events/stream', access: 'read' },
  { method: 'PUT', path: '/v1/devices/{serial}/unlock-pin', access: 'operate' },
  { method: 'DELETE', path: '/v1/devices/{serial}/unlock-pin', access: 'operate' },
  { method: 'GET', path: '/v1/devices/{serial}/unlock-pin', access: 'read' },
  { method: 'POST', path: '/v1/devices/{serial}/unlock-pin/validate', access: 'operate' },
  { method: 'GET', path: '/v1/devices/{serial}/lid-cycles', access: 'read' },
  { method: 'GET', path: '/v1/lid-cycles/{cycleId}', access: 'read' },
  { method: 'POST', path: '/v1/devices/{serial}/commands', access: 'operate' },
  { method: 'GET', path: '/v1/devices/{serial}/commands/{commandId}', access: 'read' },
  { method: 'POST', path: '/v1/deployments', access: 'deploy' },
  { method: 'GET', path: '/v1/deployments', access: 'read' },
  { method: 'GET', path: '/v1/deployments/{id}', access: 'read' },
  { method: 'POST', path: '/v1/deployments/{id}/cancel', access: 'deploy' },
  { method: 'GET', path: '/v1/devices/{serial}/software', access: 'read' },
  { method: 'GET', path: '/v1/fleet-devices', access: 'read' },
  { method: 'GET', path: '/v1/fleet-devices/{serial}', access: 'read' },
  { method: 'POST', path: '/v1/operations-events', access: 'operate' },
  { method: 'PUT', path: '/v1/devices/{serial}/driveu-unit', access: 'operate' },
  { method: 'GET', path: '/v1/partners/{provider}/vehicles/{providerVehicleId}', access: 'read', partner: true },
];

export const routeName = (r: { method: string; path: string }) => `${r.method} ${r.path}`;

/** `/v1/devices/{serial}` with the values given (percent-encoded). */
export function fillPath(path: string, params: Record<string, string>): string {
  return path.replace(/\{(\w+)\}/g, (_m, name: string) => {
    if (!(name in params)) throw new Error(`no value for {${name}} in ${path}`);
    return encodeURIComponent(params[name]);
  });
}

type Layer = { route?: { path: string; methods: Record<string, boolean> }; handle?: { stack?: Layer[] } };

/** The routes the Express app serves, from its router stack, in OpenAPI path syntax. */
export function expressRoutes(): string[] {
  const app = createApp({
    prisma: {} as Prisma,
    temporal: new Client({ connection: Connection.lazy({ address: '127.0.0.1:1', interceptors: [] }) }),
    config: loadConfig({ API_KEYS: 'route-listing:read' }),
    logger: pino({ level: 'silent' }),
  });
  const found: string[] = [];
  const walk = (stack: Layer[]) => {
    for (const layer of stack) {
      if (layer.route) {
        // `:name` is a parameter, `\:` a literal colon (`/v1/devices\:batchGet`).
        const path = layer.route.path.replace(/(?<!\\):(\w+)/g, '{$1}').replace(/\\:/g, ':');
        for (const method of Object.keys(layer.route.methods)) found.push(`${method.toUpperCase()} ${path}`);
      }
      if (layer.handle?.stack) walk(layer.handle.stack);
    }
  };
  walk((app as unknown as { router: { stack: Layer[] } }).router.stack);
  return found.sort();
}

type OpenApiOperation = {
  security?: Record<string, string[]>[];
  parameters?: { name: string; in: string }[];
  requestBody?: { content?: Record<string, { schema?: unknown }> };
  responses?: Record<string, unknown>;
};
export type OpenApiDocument = { paths: Record<string, Record<string, OpenApiOperation>>; components?: { schemas?: Record<string, unknown> } };

export function openApiRoutes(doc: OpenApiDocument): string[] {
  return Object.entries(doc.paths)
    .flatMap(([path, operations]) => Object.keys(operations).map((method) => `${method.toUpperCase()} ${path}`))
    .sort();
}

/**
 * The names a 400 may name for a route: its path, query and header parameters and the top-level
 * properties of its request body, as the OpenAPI document gives them.
 */
export function inputFields(doc: OpenApiDocument, route: RouteSpec): Set<string> {
  const operation = doc.paths[route.path]?.[route.method.toLowerCase()];
  const fields = new Set<string>(['body', '(root)']);
  for (const p of operation?.parameters ?? []) fields.add(p.name);
  const schema = operation?.requestBody?.content?.['application/json']?.schema;
  for (const name of propertyNames(doc, schema)) fields.add(name);
  return fields;
}

function propertyNames(doc: OpenApiDocument, schema: unknown, seen = new Set<unknown>()): string[] {
  if (!schema || typeof schema !== 'object' || seen.has(schema)) return [];
  seen.add(schema);
  const s = schema as { $ref?: string; properties?: object; anyOf?: unknown[]; oneOf?: unknown[]; allOf?: unknown[] };
  if (s.$ref) return propertyNames(doc, doc.components?.schemas?.[s.$ref.replace('#/components/schemas/', '')], seen);
  const nested = [...(s.anyOf ?? []), ...(s.oneOf ?? []), ...(s.allOf ?? [])].flatMap((x) => propertyNames(doc, x, seen));
  return [...Object.keys(s.properties ?? {}), ...nested];
}
