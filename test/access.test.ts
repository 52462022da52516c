import { createHmac, randomUUID } from 'node:crypto';
import { inspect } from 'node:util';
import type { MqttClient } from 'mqtt';
import { apiKeysFromConfig, developmentKey } from '../api/auth';
import { developmentDriveuSecret } from '../api/driveu';
import { eventually, startFleet, uniqueSerial, type TestFleet } from './support/fleet';
import { connectRobot, heartbeat, publish } from './support/robot';
import { expressRoutes, openApiRoutes, routeName, routes, type OpenApiDocument, type RouteSpec } from './support/routes';

/**
 * Who may call what, for every route of the API (test/support/routes.ts lists them): 401 without a
 * key or with a wrong one, 403 with a key that has every scope but the one needed, and through with
 * the right scope alone. The DriveU webhook takes no key but a signature; a few routes are public.
 */

const KEYS = {
  read: `read-${randomUUID()}`,
  operate: `operate-${randomUUID()}`,
  deploy: `deploy-${randomUUID()}`,
  all: `all-${randomUUID()}`,
  notRead: `not-read-${randomUUID()}`,
  notOperate: `not-operate-${randomUUID()}`,
  notDeploy: `not-deploy-${randomUUID()}`,
  partner: `partner-uber-${randomUUID()}`,
};
const API_KEYS = [
  `${KEYS.read}:read`,
  `${KEYS.operate}:operate`,
  `${KEYS.deploy}:deploy`,
  `${KEYS.all}:read,operate,deploy`,
  `${KEYS.notRead}:operate,deploy`,
  `${KEYS.notOperate}:read,deploy`,
  `${KEYS.notDeploy}:read,operate`,
  `${KEYS.partner}:partner:uber`,
].join(';');
const WEBHOOK_SECRET = `access-test-${randomUUID()}`;
const withoutScope = { read: KEYS.notRead, operate: KEYS.notOperate, deploy: KEYS.notDeploy };

let fleet: TestFleet;
let robot: MqttClient;
const fx = { serial: '', commandId: '', cycleId: '', deploymentId: '', unitUuid: randomUUID(), vehicleId: `uber-access-${randomUUID()}` };

type Answer = { status: number; body: any; type: string | null };

/** One request; an event stream is closed as soon as its headers arrive. */
async function call(method: string, path: string, opts: { key?: string; body?: unknown; headers?: Record<string, string> } = {}): Promise<Answer> {
  const abort = new AbortController();
  const res = await fetch(`${fleet.url}${path}`, {
    method,
    signal: abort.signal,
    headers: {
      ...(opts.key ? { 'x-api-key': opts.key } : {}),
      ...(opts.body === undefined ? {} : { 'content-type': 'application/json' }),
      ...opts.headers,
    },
    body: opts.body === undefined ? undefined : typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body),
  });
  const type = res.headers.get('content-type');
  if (type?.startsWith('text/event-stream')) {
    abort.abort();
    return { status: res.status, body: undefined, type };
  }
  const text = await res.text();
  return { status: res.status, body: type?.includes('json') ? JSON.parse(text) : text, type };
}

const inMinutes = (minutes: number) => new Date(Date.now() + minutes * 60_000).toISOString();
const thingArn = (serial: string) => `arn:aws:iot:us-east-1:000000000000:thing/${serial}`;
const slowRollout = (requestId: string) => ({
  targetArn: thingArn(fx.serial),
  components: { 'com.coco.Access': { componentVersion: '1.0.0' } },
  // A canary, then an hour's soak: the rollout is still running when the tests cancel it.
  rollout: { canaryDevices: 1, soakSeconds: 3600 },
  requestId,
});
const webhookBody = () => JSON.stringify({ eventName: 'status', unit: 'streamer', status: 'online', uuid: fx.unitUuid, vin: null, time: Date.now() * 1000 });
const sign = (raw: string, secret = WEBHOOK_SECRET) => `sha256=${createHmac('sha256', secret).update(raw).digest('hex')}`;

/** What each route answers to a caller with the right scope: the request and its status. */
const allowed: Record<string, () => { path: string; body?: unknown; status: number }> = {
  'GET /healthz': () => ({ path: '/healthz', status: 200 }),
  'GET /readyz': () => ({ path: '/readyz', status: 200 }),
  'GET /metrics': () => ({ path: '/metrics', status: 200 }),
  'GET /openapi.json': () => ({ path: '/openapi.json', status: 200 }),
  'POST /v1/webhooks/driveu': () => ({ path: '/v1/webhooks/driveu', body: webhookBody(), status: 202 }),
  'GET /v1/devices': () => ({ path: `/v1/devices?filter=${encodeURIComponent(`serial=${fx.serial}`)}`, status: 200 }),
  'GET /v1/devices/{serial}': () => ({ path: `/v1/devices/${fx.serial}`, status: 200 }),
  'GET /v1/devices:batchGet': () => ({ path: `/v1/devices:batchGet?serials=${fx.serial}`, status: 200 }),
  'GET /v1/device-updates/stream': () => ({ path: `/v1/device-updates/stream?serials=${fx.serial}`, status: 200 }),
  'GET /v1/rejected-messages': () => ({ path: `/v1/rejected-messages?serial=${fx.serial}`, status: 200 }),
  'GET /v1/events': () => ({ path: `/v1/events?serial=${fx.serial}`, status: 200 }),
  'GET /v1/events/stream': () => ({ path: `/v1/events/stream?serial=${fx.serial}`, status: 200 }),
  'PUT /v1/devices/{serial}/unlock-pin': () => ({
    path: `/v1/devices/${fx.serial}/unlock-pin`,
    body: { pin: '8642', pinType: 'MERCHANT', contextId: 'access-test', expiresAt: inMinutes(10) },
    status: 200,
  }),
  'DELETE /v1/devices/{serial}/unlock-pin': () => ({ path: `/v1/devices/${fx.serial}/unlock-pin`, status: 200 }),
  'GET /v1/devices/{serial}/unlock-pin': () => ({ path: `/v1/devices/${fx.serial}/unlock-pin`, status: 200 }),
  'POST /v1/devices/{serial}/unlock-pin/validate': () => ({ path: `/v1/devices/${fx.serial}/unlock-pin/validate`, body: { pin: '1357' }, status: 200 }),
  'GET /v1/devices/{serial}/lid-cycles': () => ({ path: `/v1/devices/${fx.serial}/lid-cycles`, status: 200 }),
  'GET /v1/lid-cycles/{cycleId}': () => ({ path: `/v1/lid-cycles/${fx.cycleId}`, status: 200 }),
  'POST /v1/devices/{serial}/commands': () => ({ path: `/v1/devices/${fx.serial}/commands`, body: { commandType: 'HONK' }, status: 202 }),
  'GET /v1/devices/{serial}/commands/{commandId}': () => ({ path: `/v1/devices/${fx.serial}/commands/${fx.commandId}`, status: 200 }),
  'POST /v1/deployments': () => ({ path: '/v1/deployments', body: slowRollout(`access-${randomUUID()}`), status: 201 }),
  'GET /v1/deployments': () => ({ path: '/v1/deployments?pageSize=1', status: 200 }),
  'GET /v1/deployments/{id}': () => ({ path: `/v1/deployments/${fx.deploymentId}`, status: 200 }),
  'POST /v1/deployments/{id}/cancel': () => ({ path: `/v1/deployments/${fx.deploymentId}/cancel`, body: { reason: 'access test' }, status: 202 }),
  'GET /v1/devices/{serial}/software': () => ({ path: `/v1/devices/${fx.serial}/software`, status: 200 }),
  'GET /v1/fleet-devices': () => ({ path: `/v1/fleet-devices?filter=${encodeURIComponent(`serial=${fx.serial}`)}`, status: 200 }),
  'GET /v1/fleet-devices/{serial}': () => ({ path: `/v1/fleet-devices/${fx.serial}`, status: 200 }),
  'POST /v1/operations-events': () => ({
    path: '/v1/operations-events',
    body: { id: `access-${randomUUID()}`, type: 'FoTask.Created', serial: fx.serial, occurredAt: new Date().toISOString(), data: { taskId: `t-${randomUUID()}`, taskType: 'INSPECT', status: 'PENDING' } },
    status: 200,
  }),
  'PUT /v1/devices/{serial}/driveu-unit': () => ({ path: `/v1/devices/${fx.serial}/driveu-unit`, body: { uuid: fx.unitUuid }, status: 200 }),
  'GET /v1/partners/{provider}/vehicles/{providerVehicleId}': () => ({ path: `/v1/partners/uber/vehicles/${fx.vehicleId}`, status: 200 }),
};

beforeAll(async () => {
  fleet = await startFleet({ API_KEYS, DRIVEU_WEBHOOK_SECRET: WEBHOOK_SECRET, OFFLINE_AFTER_SECONDS: '60' });
  robot = await connectRobot();
  fx.serial = uniqueSerial('AC');
  // The lid opens with no unlock before it: a (forced) lid cycle to read.
  await publish(robot, `robot/${fx.serial}/status`, heartbeat(fx.serial, { lid: { is_open: true } }));
  const cycles = await eventually(async () => {
    const res = await call('GET', `/v1/devices/${fx.serial}/lid-cycles`, { key: KEYS.all });
    expect(res.body.lidCycles).toHaveLength(1);
    return res.body.lidCycles;
  });
  fx.cycleId = cycles[0].cycleId;
  const command = await call('POST', `/v1/devices/${fx.serial}/commands`, { key: KEYS.all, body: { commandType: 'FLASH_LIGHTS' } });
  expect(command.status).toBe(202);
  fx.commandId = command.body.commandId;
  const rollout = await call('POST', '/v1/deployments', { key: KEYS.all, body: slowRollout(`access-fixture-${randomUUID()}`) });
  expect(rollout.status).toBe(201);
  fx.deploymentId = rollout.body.deploymentId;
  const mapping = { id: `access-${randomUUID()}`, type: 'ProviderMapping.Created', serial: fx.serial, occurredAt: new Date().toISOString(), data: { provider: 'uber', providerVehicleId: fx.vehicleId, deliveryId: `access-${randomUUID()}` } };
  expect((await call('POST', '/v1/operations-events', { key: KEYS.all, body: mapping })).status).toBe(200);
});

afterAll(async () => {
  // Stop the rollouts the tests started, so their workflows do not outlive the test.
  const started = await fleet?.prisma.softwareDeployment.findMany({ where: { targetArn: thingArn(fx.serial) }, select: { deploymentId: true } });
  for (const { deploymentId } of started ?? []) await call('POST', `/v1/deployments/${deploymentId}/cancel`, { key: KEYS.all, body: {} });
  await robot?.endAsync();
  await fleet?.stop();
});

describe('the route list is complete', () => {
  test('it names every route the app serves, and nothing else', () => {
    expect(routes.map(routeName).sort()).toEqual(expressRoutes());
  });

  test('it names every route the OpenAPI document describes, and nothing else', async () => {
    const doc = (await call('GET', '/openapi.json')).body as OpenApiDocument;
    expect(routes.map(routeName).sort()).toEqual(openApiRoutes(doc));
  });

  test('the OpenAPI document asks for the API key exactly where the API does', async () => {
    const doc = (await call('GET', '/openapi.json')).body as OpenApiDocument;
    for (const route of routes) {
      const security = doc.paths[route.path][route.method.toLowerCase()].security ?? [];
      expect([routeName(route), security.some((s) => 'ApiKey' in s)]).toEqual([routeName(route), !['public', 'signature'].includes(route.access)]);
    }
  });

  test('each route has an allowed request in this file', () => {
    expect(Object.keys(allowed).sort()).toEqual(routes.map(routeName).sort());
  });
});

const keyed = routes.filter((r): r is RouteSpec & { access: 'read' | 'operate' | 'deploy' } => ['read', 'operate', 'deploy'].includes(r.access));

describe.each(keyed.map((r) => [routeName(r), r] as const))('%s', (_name, route) => {
  const request = () => {
    const { path, body } = allowed[routeName(route)]();
    return { path, body };
  };

  test('is 401 without a key', async () => {
    const { path, body } = request();
    const res = await call(route.method, path, { body });
    expect([res.status, res.body.error?.code]).toEqual([401, 'UNAUTHENTICATED']);
  });

  test('is 401 with a wrong key, a near miss of a real one, or a real one sent elsewhere', async () => {
    const { path, body } = request();
    for (const key of [`wrong-${randomUUID()}`, `${KEYS.all}x`, KEYS.all.slice(0, -1), KEYS.all.toUpperCase()]) {
      const res = await call(route.method, path, { key, body });
      expect([key, res.status, res.body.error?.code]).toEqual([key, 401, 'UNAUTHENTICATED']);
    }
    const bearer = await call(route.method, path, { body, headers: { authorization: `Bearer ${KEYS.all}` } });
    expect(bearer.status).toBe(401);
    const inQuery = await call(route.method, `${path}${path.includes('?') ? '&' : '?'}x-api-key=${KEYS.all}`, { body });
    expect(inQuery.status).toBe(401);
  });

  test(`is 403 with a key that has every scope but ${route.access}`, async () => {
    const { path, body } = request();
    const res = await call(route.method, path, { key: withoutScope[route.access], body });
    expect([res.status, res.body.error?.code]).toEqual([403, 'PERMISSION_DENIED']);
    expect(res.body.error.message).toContain(`"${route.access}"`);
  });

  test(`is allowed with the ${route.access} scope alone`, async () => {
    const { path, body, status } = allowed[routeName(route)]();
    const res = await call(route.method, path, { key: KEYS[route.access], body });
    expect([res.status, res.body?.error?.code]).toEqual([status, undefined]);
  });
});

describe('a key with a partner scope', () => {
  const others = keyed.filter((r) => !r.partner);

  test.each(others.map((r) => [routeName(r), r] as const))('is 403 at %s', async (_name, route) => {
    const { path, body } = allowed[routeName(route)]();
    const res = await call(route.method, path, { key: KEYS.partner, body });
    expect([res.status, res.body.error?.code]).toEqual([403, 'PERMISSION_DENIED']);
  });

  test.each(keyed.filter((r) => r.partner).map((r) => [routeName(r), r] as const))("reaches %s for its own provider's vehicles", async (_name, route) => {
    const { path, status } = allowed[routeName(route)]();
    expect((await call(route.method, path, { key: KEYS.partner })).status).toBe(status);
  });
});

describe.each(routes.filter((r) => r.access === 'public').map((r) => [routeName(r), r] as const))('%s', (_name, route) => {
  test('answers without a key', async () => {
    const res = await call(route.method, route.path);
    expect(res.status).toBe(allowed[routeName(route)]().status);
  });
});

describe('POST /v1/webhooks/driveu', () => {
  test('is 401 without a signature, even with an API key of every scope', async () => {
    const raw = webhookBody();
    expect((await call('POST', '/v1/webhooks/driveu', { body: raw })).status).toBe(401);
    expect((await call('POST', '/v1/webhooks/driveu', { body: raw, key: KEYS.all })).status).toBe(401);
  });

  test('is 401 with a signature made with another secret, or over other bytes', async () => {
    const raw = webhookBody();
    const res = await call('POST', '/v1/webhooks/driveu', { body: raw, headers: { 'x-driveu-signature': sign(raw, 'another-secret') } });
    expect([res.status, res.body.error.code]).toEqual([401, 'UNAUTHENTICATED']);
    const reformatted = JSON.stringify(JSON.parse(raw), null, 1);
    expect((await call('POST', '/v1/webhooks/driveu', { body: reformatted, headers: { 'x-driveu-signature': sign(raw) } })).status).toBe(401);
  });

  test('is allowed with the signature of its exact bytes', async () => {
    const raw = webhookBody();
    const res = await call('POST', '/v1/webhooks/driveu', { body: raw, headers: { 'x-driveu-signature': sign(raw) } });
    expect(res.status).toBe(202);
  });
});

test('development stand-ins are refused once the real secrets are configured', async () => {
  expect((await call('GET', '/v1/devices', { key: developmentKey() })).status).toBe(401);
  const raw = webhookBody();
  expect((await call('POST', '/v1/webhooks/driveu', { body: raw, headers: { 'x-driveu-signature': sign(raw, developmentDriveuSecret()) } })).status).toBe(401);
});

test('the API holds keys only as digests', () => {
  const held = inspect(apiKeysFromConfig({ API_KEYS }), { depth: 10, maxArrayLength: Infinity });
  expect(held).not.toContain('read-');
  for (const key of Object.values(KEYS)) expect(held).not.toContain(key);
  expect(JSON.stringify(apiKeysFromConfig({ API_KEYS }))).not.toContain(KEYS.all);
});
