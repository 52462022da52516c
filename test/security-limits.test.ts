import { request as httpRequest } from 'node:http';
import { gzipSync } from 'node:zlib';
import mqtt, { type MqttClient } from 'mqtt';
import { MAX_HEARTBEAT_BYTES } from '../domain/heartbeat';
import { eventually, required, startFleet, uniqueSerial, type TestFleet } from './support/fleet';
import { connectRobot, heartbeat, publish } from './support/robot';
import { fillPath, routeName, routes, type OpenApiDocument } from './support/routes';
import { serveApi } from './support/second-api';

/** Bounds on what a client can make the backend do: request rates, body sizes, MQTT payload sizes. */

// infra/mqtt-broker.ts's cap, as AWS IoT Core's (importing it would load aedes, an ES module, into Jest).
const MAX_MQTT_PAYLOAD_BYTES = 128 * 1024;

let fleet: TestFleet;
let robot: MqttClient;

beforeAll(async () => {
  fleet = await startFleet();
  robot = await connectRobot();
});

afterAll(async () => {
  await robot?.endAsync();
  await fleet?.stop();
});

type Answer = { status: number; headers: Record<string, string | string[] | undefined>; body: any };

/** A request through node:http, which (unlike fetch) sends bodies with any method, chunked or compressed. */
function send(base: string, method: string, path: string, opts: { headers?: Record<string, string>; body?: Buffer | Buffer[] } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${base}${path}`, { method, headers: opts.headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        const json = res.headers['content-type']?.includes('json');
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: json ? JSON.parse(text) : text });
      });
    });
    req.on('error', reject);
    for (const chunk of Array.isArray(opts.body) ? opts.body : opts.body ? [opts.body] : []) req.write(chunk);
    req.end();
  });
}

const get = (base: string, path: string, headers: Record<string, string> = {}) => send(base, 'GET', path, { headers });

describe('rate limits', () => {
  test('an API key gets its burst, then 429 RESOURCE_EXHAUSTED with Retry-After; another key keeps its own', async () => {
    // One token per 100 s after a burst of 3: the count is exact however slow the machine.
    const api = await serveApi(fleet, { API_RATE_LIMIT_PER_SECOND: '0.01', API_RATE_BURST: '3' });
    try {
      const key = { 'x-api-key': fleet.keys.all };
      for (let i = 0; i < 3; i++) expect((await get(api.url, '/v1/devices?pageSize=1', key)).status).toBe(200);
      const refused = await get(api.url, '/v1/devices?pageSize=1', key);
      expect(refused.status).toBe(429);
      expect(refused.headers['retry-after']).toBe('100');
      expect(refused.body).toEqual({
        error: {
          code: 'RESOURCE_EXHAUSTED',
          message: 'rate limit exceeded for this API key (0.01 requests per second, bursts of 3): retry after 100 s',
          details: { retryAfterSeconds: 100 },
        },
      });
      // Every route shares the key's bucket, and the limit comes before any work on the request.
      const post = await send(api.url, 'POST', '/v1/operations-events', { headers: { ...key, 'content-type': 'application/json' }, body: Buffer.from('{}') });
      expect(post.status).toBe(429);
      for (let i = 0; i < 3; i++) expect((await get(api.url, '/v1/devices?pageSize=1', { 'x-api-key': fleet.keys.read })).status).toBe(200);
    } finally {
      await api.close();
    }
  });

  test('requests without a valid key share a bucket per client address: the webhook, health checks and wrong keys', async () => {
    const api = await serveApi(fleet, { IP_RATE_LIMIT_PER_SECOND: '0.01', IP_RATE_BURST: '2' });
    try {
      const webhook = () => send(api.url, 'POST', '/v1/webhooks/driveu', { headers: { 'content-type': 'application/json' }, body: Buffer.from('{}') });
      expect((await webhook()).status).toBe(401);
      expect((await webhook()).status).toBe(401);
      // Turned away before its signature is even checked.
      const refused = await webhook();
      expect([refused.status, refused.body.error.code, refused.headers['retry-after']]).toEqual([429, 'RESOURCE_EXHAUSTED', '100']);
      expect(refused.body.error.message).toMatch(/^rate limit exceeded for this client address/);
      expect((await get(api.url, '/healthz')).status).toBe(429);
      expect((await get(api.url, '/v1/devices', { 'x-api-key': 'not-a-key' })).status).toBe(429);
      // A valid key is counted on its own bucket.
      expect((await get(api.url, '/v1/devices?pageSize=1', { 'x-api-key': fleet.keys.read })).status).toBe(200);
    } finally {
      await api.close();
    }
  });

  test('X-Forwarded-For escapes nothing unless TRUST_PROXY_HOPS says a proxy sets it', async () => {
    const direct = await serveApi(fleet, { IP_RATE_LIMIT_PER_SECOND: '0.01', IP_RATE_BURST: '2' });
    const proxied = await serveApi(fleet, { IP_RATE_LIMIT_PER_SECOND: '0.01', IP_RATE_BURST: '2', TRUST_PROXY_HOPS: '1' });
    try {
      const spoofed = await Promise.all(['10.0.0.1', '10.0.0.2', '10.0.0.3'].map((ip) => get(direct.url, '/healthz', { 'x-forwarded-for': ip })));
      expect(spoofed.map((a) => a.status).sort()).toEqual([200, 200, 429]);
      const viaProxy = async (ip: string) => (await get(proxied.url, '/healthz', { 'x-forwarded-for': ip })).status;
      expect([await viaProxy('10.0.0.1'), await viaProxy('10.0.0.1'), await viaProxy('10.0.0.1')]).toEqual([200, 200, 429]);
      expect(await viaProxy('10.0.0.2')).toBe(200);
    } finally {
      await direct.close();
      await proxied.close();
    }
  });

  test("the default limits let a dashboard's burst of 400 simultaneous reads through", async () => {
    const api = await serveApi(fleet, {});
    try {
      const answers = await Promise.all(Array.from({ length: 400 }, () => get(api.url, '/v1/fleet-devices?pageSize=1', { 'x-api-key': fleet.keys.read })));
      expect(new Set(answers.map((a) => a.status))).toEqual(new Set([200]));
    } finally {
      await api.close();
    }
  });

  test('throttled requests are counted in /metrics, and every operation documents its 429', async () => {
    const api = await serveApi(fleet, { API_RATE_LIMIT_PER_SECOND: '0.01', API_RATE_BURST: '1' });
    try {
      expect((await get(api.url, '/v1/devices?pageSize=1', { 'x-api-key': fleet.keys.read })).status).toBe(200);
      expect((await get(api.url, '/v1/devices?pageSize=1', { 'x-api-key': fleet.keys.read })).status).toBe(429);
    } finally {
      await api.close();
    }
    const metrics = await get(fleet.url, '/metrics');
    expect(metrics.body).toMatch(/^fleet_http_throttled_total\{limit="api_key"\} [1-9]\d*$/m);
    const doc = (await get(fleet.url, '/openapi.json')).body as OpenApiDocument;
    for (const route of routes) expect([routeName(route), Object.keys(doc.paths[route.path][route.method.toLowerCase()].responses ?? {})]).toEqual([routeName(route), expect.arrayContaining(['429'])]);
  });
});

describe('body limits', () => {
  const params = { serial: 'R1', cycleId: '00000000-0000-4000-8000-000000000000', commandId: '00000000-0000-4000-8000-000000000000', id: 'd1', provider: 'uber', providerVehicleId: 'v1' };
  const json = (bytes: number) => Buffer.from(JSON.stringify({ padding: 'x'.repeat(bytes) }));

  test.each(routes.map((r) => [routeName(r), r] as const))('%s refuses a body over its limit with 413 naming the body', async (_name, route) => {
    // The DriveU webhook reads its raw body with a 16 KiB limit, everything else JSON up to 100 kb.
    const body = json(route.access === 'signature' ? 17 * 1024 : 101 * 1024);
    const res = await send(fleet.url, route.method, fillPath(route.path, params), {
      headers: { 'x-api-key': fleet.keys.all, 'content-type': 'application/json', 'content-length': String(body.length) },
      body,
    });
    expect([res.status, res.body.error?.code]).toEqual([413, 'PAYLOAD_TOO_LARGE']);
    expect(res.body.error.message).toBe(`body: larger than the ${route.access === 'signature' ? 16384 : 102400}-byte limit`);
  });

  test('the limit counts inflated bytes: a 10 MB gzip bomb of a few kilobytes is refused', async () => {
    const bomb = gzipSync(Buffer.concat([Buffer.from('{"padding":"'), Buffer.alloc(10 * 1024 * 1024, 0x61), Buffer.from('"}')]));
    expect(bomb.length).toBeLessThan(64 * 1024);
    for (const path of ['/v1/operations-events', '/v1/webhooks/driveu']) {
      const res = await send(fleet.url, 'POST', path, {
        headers: { 'x-api-key': fleet.keys.all, 'content-type': 'application/json', 'content-encoding': 'gzip' },
        body: bomb,
      });
      expect([path, res.status, res.body.error?.message]).toEqual([path, 413, expect.stringMatching(/^body: larger than/)]);
    }
  });

  test('the limit holds for a chunked body that announces no length', async () => {
    const chunks = Array.from({ length: 64 }, (_, i) => Buffer.from(i === 0 ? '{"padding":"' : 'x'.repeat(4096)));
    const res = await send(fleet.url, 'POST', '/v1/operations-events', { headers: { 'x-api-key': fleet.keys.all, 'content-type': 'application/json' }, body: chunks });
    expect([res.status, res.body.error?.message]).toEqual([413, expect.stringMatching(/^body: larger than/)]);
    expect((await get(fleet.url, '/healthz')).status).toBe(200);
  });
});

describe('MQTT payload bounds', () => {
  const padded = (serial: string, bytes: number) => JSON.stringify({ ...heartbeat(serial), padding: 'x'.repeat(bytes) });

  test('a heartbeat over 64 KiB passes the broker and is rejected for its size, kept truncated', async () => {
    const serial = uniqueSerial('MQ');
    const payload = padded(serial, 100 * 1024);
    expect(payload.length).toBeLessThan(MAX_MQTT_PAYLOAD_BYTES);
    await publish(robot, `robot/${serial}/status`, payload);
    const row = await eventually(async () => {
      const found = await fleet.prisma.rejectedMessage.findFirst({ where: { topic: `robot/${serial}/status` } });
      expect(found).not.toBeNull();
      return found!;
    });
    expect(row.reason).toBe(`payload: ${Buffer.byteLength(payload)} bytes is over the ${MAX_HEARTBEAT_BYTES}-byte limit`);
    expect(row.payload.length).toBeLessThan(17 * 1024);
    expect((await fleet.api(`/v1/devices/${serial}`)).status).toBe(404);
  });

  test('over 128 KiB the broker refuses the message and drops the publisher; ingest never sees it and keeps going', async () => {
    const serial = uniqueSerial('MQ');
    const client = await mqtt.connectAsync(required('MQTT_URL'), { reconnectPeriod: 0 });
    const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
    client.publish(`robot/${serial}/status`, padded(serial, MAX_MQTT_PAYLOAD_BYTES), { qos: 1 }, () => undefined);
    await closed;
    client.end(true);

    const next = uniqueSerial('MQ');
    await publish(robot, `robot/${next}/status`, heartbeat(next));
    await eventually(async () => expect((await fleet.api(`/v1/devices/${next}`)).status).toBe(200));
    expect(await fleet.prisma.rejectedMessage.count({ where: { topic: `robot/${serial}/status` } })).toBe(0);
    expect((await fleet.api(`/v1/devices/${serial}`)).status).toBe(404);
  });
});
