import { createHash, createHmac, randomUUID } from 'node:crypto';
import fc from 'fast-check';
import type { MqttClient } from 'mqtt';
import { parseHeartbeat } from '../domain/heartbeat';
import { eventually, startFleet, uniqueSerial, type TestFleet } from './support/fleet';
import { fieldPaths, validHeartbeat } from './support/fuzz-heartbeats';
import { heapUsedAfterGc, hostileJson, hostileKey, hostileString, hostileValue, namedField, prototypeSnapshot, setAt, topField } from './support/hostile';
import { connectRobot, heartbeat, publish } from './support/robot';
import { inputFields, routeName, routes, type OpenApiDocument, type RouteSpec } from './support/routes';
import { serveApi } from './support/second-api';

/**
 * Hostile input at the real stack: a few hundred malformed, oversized and hostile heartbeats
 * through the broker to the ingest worker, and hundreds of hostile requests at every route of the
 * API (wrong types, huge arrays, deep nesting, unicode, prototype-polluting keys, filters built to
 * inject SQL). Nothing crashes, nothing answers 500, every rejection names its field, every
 * rejected heartbeat is kept with its reason, Object.prototype stays clean and memory stays flat.
 * (test/unit/fuzz-heartbeat.test.ts runs thousands more through the parser alone.)
 */

const WEBHOOK_SECRET = `fuzz-${randomUUID()}`;
// Fixed seeds keep CI reproducible; FUZZ_SEED and FUZZ_RUNS explore further (FUZZ_SEED=123 FUZZ_RUNS=3000 npx jest test/fuzz.test.ts).
const SEED = Number(process.env.FUZZ_SEED ?? 11);
const MQTT_CASES = 300;
const HTTP_RUNS = Number(process.env.FUZZ_RUNS ?? 600);
// Generous: the point is "flat", not a number; a leak of a few kilobytes per request would show as many megabytes.
const HEAP_GROWTH_BOUND = 64 * 1024 * 1024;

let fleet: TestFleet;
let robot: MqttClient;
let doc: OpenApiDocument;
let prototypeBefore: string;
const fx = { serial: '', vehicleId: `uber-fuzz-${randomUUID()}` };

beforeAll(async () => {
  prototypeBefore = prototypeSnapshot();
  fleet = await startFleet({
    DRIVEU_WEBHOOK_SECRET: WEBHOOK_SECRET,
    // The fuzzer is one client sending as fast as it can; limits are tested in test/security-limits.test.ts.
    API_RATE_LIMIT_PER_SECOND: '0',
    PIN_CHECK_RATE_PER_SECOND: '0',
    OFFLINE_AFTER_SECONDS: '120',
  });
  robot = await connectRobot();
  fx.serial = uniqueSerial('FZ');
  await publish(robot, `robot/${fx.serial}/status`, heartbeat(fx.serial));
  await eventually(async () => expect((await fleet.api(`/v1/devices/${fx.serial}`)).status).toBe(200));
  // A vehicle the partner route finds, so its fuzzed requests also reach a real answer.
  const mapping = { id: `fuzz-${randomUUID()}`, type: 'ProviderMapping.Created', serial: fx.serial, occurredAt: new Date().toISOString(), data: { provider: 'uber', providerVehicleId: fx.vehicleId, deliveryId: `fuzz-${randomUUID()}` } };
  expect((await fleet.request('POST', '/v1/operations-events', mapping)).status).toBe(200);
  doc = (await fleet.api('/openapi.json')).body;
});

afterAll(async () => {
  await robot?.endAsync();
  await fleet?.stop();
  expect(prototypeSnapshot()).toBe(prototypeBefore);
});

describe('MQTT', () => {
  test(`${MQTT_CASES} hostile heartbeats through the broker: each rejected one is kept with its reason, valid ones land, ingest keeps going`, async () => {
    const cases = fc
      .sample(
        fc.oneof(
          { weight: 6, arbitrary: fc.tuple(validHeartbeat, fc.constantFrom(...fieldPaths), hostileValue).map(([raw, path, value]) => ({ raw, path, value })) },
          { weight: 1, arbitrary: fc.oneof(hostileString, fc.uint8Array({ maxLength: 4096 }).map((b) => Buffer.from(b)), fc.jsonValue({ maxDepth: 5 }).map((v) => JSON.stringify(v))) },
          { weight: 1, arbitrary: validHeartbeat.map((raw) => ({ raw, path: [] as (string | number)[], value: undefined })) },
        ),
        { numRuns: MQTT_CASES, seed: SEED },
      )
      .map((c) => {
        const serial = uniqueSerial('FM');
        const payload = typeof c === 'string' || Buffer.isBuffer(c) ? c : hostileJson(c.path.length ? setAt({ ...c.raw, serial }, c.path, c.value) : { ...c.raw, serial });
        const topic = `robot/${serial}/status`;
        return { serial, topic, payload, expected: parseHeartbeat(topic, payload, 0) };
      });
    const rejected = cases.filter((c) => !c.expected.ok);
    const accepted = cases.filter((c) => c.expected.ok);
    // Applied without a part (a hostile optional field): kept too, with the parts it left out.
    const partial = accepted.filter((c) => c.expected.ok && c.expected.dropped.length > 0);
    expect(rejected.length + partial.length).toBeGreaterThan(MQTT_CASES / 3);
    expect(accepted.length).toBeGreaterThan(20);

    const heapBefore = heapUsedAfterGc();
    // Straight through mqtt.js: the support helper would JSON-encode a Buffer.
    for (const c of cases) await robot.publishAsync(c.topic, c.payload, { qos: 1 });
    const rows = await eventually(
      async () => {
        const found = await fleet.prisma.rejectedMessage.findMany({ where: { topic: { in: cases.map((c) => c.topic) } } });
        expect(found).toHaveLength(rejected.length + partial.length);
        return found;
      },
      60_000,
      250,
    );
    const reasonByTopic = new Map(rows.map((r) => [r.topic, { reason: r.reason, applied: r.applied }]));
    for (const c of rejected) expect([c.topic, reasonByTopic.get(c.topic)]).toEqual([c.topic, { reason: (c.expected as { reason: string }).reason, applied: false }]);
    for (const c of partial) {
      const reason = c.expected.ok ? c.expected.dropped.map((d) => d.reason).join('; ') : '';
      expect([c.topic, reasonByTopic.get(c.topic)]).toEqual([c.topic, { reason, applied: true }]);
    }
    await eventually(async () => expect(await fleet.prisma.device.count({ where: { serialNumber: { in: accepted.map((c) => c.serial) } } })).toBe(accepted.length), 60_000, 250);

    // And the worker is still taking heartbeats.
    const after = uniqueSerial('FM');
    await publish(robot, `robot/${after}/status`, heartbeat(after));
    await eventually(async () => expect((await fleet.api(`/v1/devices/${after}`)).status).toBe(200));
    expect(heapUsedAfterGc() - heapBefore).toBeLessThan(HEAP_GROWTH_BOUND);
  });

  test('a NUL in a topic or a component name is kept as rejected (escaped), and the heartbeats after it still land', async () => {
    // PostgreSQL text cannot hold NUL: stored raw, such a reason failed its batch, and ingest retried that batch for ever.
    const serial = uniqueSerial('FN');
    await publish(robot, `robot/${serial}\u0000x/status`, heartbeat(serial));
    await publish(robot, `robot/${serial}/status`, { ...heartbeat(serial), components: { 'GPS\u0000': 'OK' } });
    const next = uniqueSerial('FN');
    await publish(robot, `robot/${next}/status`, heartbeat(next));
    await eventually(async () => expect((await fleet.api(`/v1/devices/${next}`)).status).toBe(200));
    const rows = await fleet.prisma.rejectedMessage.findMany({ where: { topic: { startsWith: `robot/${serial}` } }, orderBy: { id: 'asc' } });
    expect(rows.map((r) => [r.topic, r.reason])).toEqual([
      [`robot/${serial}\\u0000x/status`, `topic: "robot/${serial}\\u0000x/status" is not robot/<serial>/status`],
      [`robot/${serial}/status`, 'components["GPS\\u0000"]: Invalid key in record'],
    ]);
  });

  test("a command ack whose message holds a NUL is kept as rejected, and the robot's next ack still moves the command", async () => {
    const sent = await fleet.request('POST', `/v1/devices/${fx.serial}/commands`, { commandType: 'FLASH_LIGHTS', timeoutSeconds: 120 });
    const commandId = sent.body.commandId as string;
    await eventually(async () => expect((await fleet.api(`/v1/devices/${fx.serial}/commands/${commandId}`)).body.status).toBe('SENT'));
    await publish(robot, `robot/${fx.serial}/command/ack`, { commandId, status: 'ACKNOWLEDGED', message: 'a\u0000b' });
    await publish(robot, `robot/${fx.serial}/command/ack`, { commandId, status: 'EXECUTED', message: 'done' });
    await eventually(async () => expect((await fleet.api(`/v1/devices/${fx.serial}/commands/${commandId}`)).body).toMatchObject({ status: 'EXECUTED', message: 'done' }));
    const rows = await fleet.prisma.rejectedMessage.findMany({ where: { topic: `robot/${fx.serial}/command/ack` } });
    expect(rows.map((r) => r.reason)).toEqual(['message: must not contain NUL (\\u0000) characters']);
  });
});

// ---- HTTP

type Answer = { status: number; body: any };

async function call(method: string, path: string, body: string | undefined, headers: Record<string, string> = {}): Promise<Answer> {
  const abort = new AbortController();
  const res = await fetch(`${fleet.url}${path}`, {
    method,
    signal: abort.signal,
    headers: { 'x-api-key': fleet.keys.all, ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
    body,
  });
  if (res.headers.get('content-type')?.startsWith('text/event-stream')) {
    abort.abort();
    return { status: res.status, body: undefined };
  }
  const text = await res.text();
  return { status: res.status, body: res.headers.get('content-type')?.includes('json') ? JSON.parse(text) : text };
}

const inMinutes = (minutes: number) => new Date(Date.now() + minutes * 60_000).toISOString();

/** A valid body for each route that takes one; the fuzzer makes one field of it hostile. */
const validBodies: Record<string, () => unknown> = {
  'PUT /v1/devices/{serial}/unlock-pin': () => ({ pin: '2468', pinType: 'MERCHANT', contextId: 'fuzz', expiresAt: inMinutes(10), flow: 'deviceless' }),
  'POST /v1/devices/{serial}/unlock-pin/validate': () => ({ pin: '1234' }),
  'POST /v1/devices/{serial}/commands': () => ({ commandType: 'HONK', parameters: { times: '2' }, requestId: 'fuzz-command', timeoutSeconds: 30 }),
  'POST /v1/deployments': () => ({
    targetArn: `arn:aws:iot:us-east-1:000000000000:thing/${fx.serial}`,
    components: { 'com.coco.Fuzz': { componentVersion: '1.0.0', configurationUpdate: { merge: '{}', reset: [] } } },
    rollout: { canaryDevices: 0, soakSeconds: 0, maxFailurePercent: 0, deadlineSeconds: 600 },
    requestId: 'fuzz-deployment',
  }),
  'POST /v1/deployments/{id}/cancel': () => ({ reason: 'fuzz' }),
  'POST /v1/operations-events': () => ({
    id: 'fuzz-fact',
    type: 'FoTask.Created',
    serial: fx.serial,
    occurredAt: new Date(0).toISOString(),
    data: { taskId: 'fuzz-task', taskType: 'INSPECT', status: 'PENDING' },
  }),
  'PUT /v1/devices/{serial}/driveu-unit': () => ({ uuid: 'fuzz-unit' }),
  'POST /v1/webhooks/driveu': () => ({ eventName: 'status', unit: 'streamer', status: 'online', uuid: 'fuzz-unit', vin: null, time: 1_700_000_000_000_000 }),
};

/** Every path to a value inside `value` (objects and arrays), so a mutation can reach any of them. */
function pathsOf(value: unknown, prefix: (string | number)[] = []): (string | number)[][] {
  if (value === null || typeof value !== 'object') return [prefix];
  const entries = Array.isArray(value) ? value.map((v, i) => [i, v] as const) : Object.entries(value);
  return [prefix, ...entries.flatMap(([k, v]) => pathsOf(v, [...prefix, k]))];
}

const filterInjections = [
  `serial="' OR '1'='1"`,
  `serial=x' OR 1=1 --`,
  `serial="x"; DROP TABLE devices; --`,
  `serial="\\" OR 1=1 --"`,
  `batteryPercent>0) OR (1=1`,
  `online=true OR 1=1`,
  `status=ON_TRIP' UNION SELECT * FROM devices --`,
  `serial=$1`,
  `serial="x\u0000y"`,
  `serial="${'a'.repeat(1990)}"`,
  `${'('.repeat(900)}serial=x${')'.repeat(900)}`,
  `${Array.from({ length: 300 }, (_, i) => `serial=s${i}`).join(' OR ')}`,
  `pg_sleep(10)=1`,
  `serial=x AND (SELECT 1)=1`,
  `__proto__=x`,
  `constructor.prototype.polluted=yes`,
  `activeTrip.tripId="x' OR 'a'='a"`,
  `batteryPercent>1e309`,
  `batteryPercent>-Infinity`,
  `serial!=""`,
];

/** `serials=A,B,...` lists: real and hostile serials, empty entries, and more than the 1,000 allowed. */
const serialLists = fc.oneof(
  fc.array(fc.oneof(fc.constant(0).map(() => fx.serial), fc.constantFrom('', ' ', 'A', 'x'.repeat(65)), hostileString), { maxLength: 8 }).map((s) => s.join(',')),
  fc.constantFrom(1000, 1001, 5000).map((n) => Array.from({ length: n }, (_, i) => `FZ${i}`).join(',')),
);

const signature = (body: string): Record<string, string> => ({ 'x-driveu-signature': `sha256=${createHmac('sha256', WEBHOOK_SECRET).update(body).digest('hex')}` });

/** Lone surrogates cannot be percent-encoded; they become U+FFFD as a browser would send them. */
const wellFormed = (s: string) => s.replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, '\ufffd');

const rawPathSegments = ['%', '%zz', '%E0%A4%A', '%00', '..', '%2e%2e', '%2F', '%C0%AE', 'a%20b', '%F0%9F%92%A5'];

const segment = fc.oneof(
  { weight: 3, arbitrary: hostileString.map((s) => encodeURIComponent(wellFormed(s))) },
  { weight: 1, arbitrary: fc.constantFrom(...rawPathSegments) },
);

type Case = { route: RouteSpec; path: string; body: string | undefined; headers: Record<string, string> };

function requestCase(route: RouteSpec): fc.Arbitrary<Case> {
  const names = [...(doc.paths[route.path][route.method.toLowerCase()].parameters ?? [])];
  const queryNames = names.filter((p) => p.in === 'query').map((p) => p.name);
  const pathNames = names.filter((p) => p.in === 'path').map((p) => p.name);
  const known: Record<string, string> = { serial: fx.serial, cycleId: randomUUID(), commandId: randomUUID(), id: 'fuzz-none', provider: 'uber', providerVehicleId: fx.vehicleId };
  const pathValues = fc.record(Object.fromEntries(pathNames.map((n) => [n, fc.oneof(fc.constant(encodeURIComponent(known[n])), segment)])));
  const queryValue = fc.oneof(hostileString, fc.constantFrom(...filterInjections), fc.integer().map(String), fc.constantFrom('true', 'false', '0', '-1', '1e3', '501'), serialLists);
  const query = fc.array(fc.tuple(fc.oneof(fc.constantFrom(...(queryNames.length ? queryNames : ['q'])), hostileKey), queryValue), { maxLength: 5 });
  const base = validBodies[routeName(route)];
  const body: fc.Arbitrary<string | undefined> = base
    ? fc.oneof(
        { weight: 5, arbitrary: fc.tuple(fc.constantFrom(...pathsOf(base())), hostileValue).map(([p, v]) => hostileJson(setAt(base(), p, v))) },
        { weight: 1, arbitrary: hostileValue.map(hostileJson) },
        { weight: 1, arbitrary: fc.constantFrom('{"__proto__":{"polluted":"yes"}}', '{"constructor":{"prototype":{"polluted":"yes"}}}', '{', '', 'null', '[]', '"x"') },
      )
    : fc.constant(undefined);
  return fc.tuple(pathValues, query, body).map(([params, q, b]) => {
    const path = route.path.replace(/\{(\w+)\}/g, (_m, n: string) => params[n]);
    const search = new URLSearchParams(q.map(([k, v]): [string, string] => [k, v])).toString();
    return { route, path: search ? `${path}?${search}` : path, body: b, headers: route.access === 'signature' && b !== undefined ? signature(b) : {} };
  });
}

/**
 * What a hostile request may get: an answer, a not-found, a 400 naming one of the route's inputs, a
 * conflict; never a 5xx. A 405 too: a segment of dots is resolved away by the URL, and what is left
 * can be another known path (`/commands/.` is `/commands/`).
 */
function checkAnswer(c: Case, answer: Answer): void {
  const where = `${c.route.method} ${c.path.slice(0, 300)} ${String(c.body).slice(0, 300)}`;
  const ok = [200, 201, 202, 400, 404, 405, 409, 413, ...(c.route.path.endsWith('/validate') ? [429] : [])];
  if (!ok.includes(answer.status)) throw new Error(`${answer.status} ${JSON.stringify(answer.body).slice(0, 500)} for ${where}`);
  if (answer.status < 400) return;
  expect(answer.body?.error).toEqual({ code: expect.any(String), message: expect.any(String), ...(answer.body.error.details ? { details: expect.anything() } : {}) });
  expect(JSON.stringify(answer.body)).not.toMatch(/\bat .*\.(ts|js):\d+/);
  if (answer.status !== 400) return;
  expect(answer.body.error.code).toBe('INVALID_ARGUMENT');
  const field = namedField(answer.body.error.message);
  // `path`: a path parameter the router could not even decode.
  const allowed = new Set([...inputFields(doc, c.route), 'path']);
  if (!field || !allowed.has(topField(field)!)) throw new Error(`400 names "${field}", not one of ${[...allowed].join(', ')}: ${answer.body.error.message.slice(0, 200)} for ${where}`);
}

describe('HTTP', () => {
  const fuzzed = () => routes.filter((r) => r.access !== 'public');

  test(`${HTTP_RUNS} hostile requests across every route: no 5xx, every 400 names a field of the route, memory flat`, async () => {
    const heapBefore = heapUsedAfterGc();
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...fuzzed()).chain(requestCase), async (c) => {
        checkAnswer(c, await call(c.route.method, c.path, c.body, c.headers));
      }),
      { numRuns: HTTP_RUNS, seed: SEED, endOnFailure: true },
    );
    expect((await fleet.api('/healthz')).status).toBe(200);
    expect(heapUsedAfterGc() - heapBefore).toBeLessThan(HEAP_GROWTH_BOUND);
    expect(prototypeSnapshot()).toBe(prototypeBefore);
  });

  test('hostile provider and vehicle ids with a partner key: its own vehicle or a 400 naming the parameter or a 404, never a 403 or 5xx', async () => {
    const partnerKey = `fuzz-partner-${randomUUID()}`;
    const api = await serveApi(fleet, { API_KEYS: `${fleet.keys.all}:read;${partnerKey}:partner:uber`, PARTNER_RATE_LIMIT_PER_SECOND: '0' });
    const route = routes.find((r) => r.partner)!;
    const value = (known: string) => fc.oneof(fc.constant(known), fc.constantFrom('UBER', 'doordash', 'lyft', fx.vehicleId.toUpperCase()), segment);
    try {
      await fc.assert(
        fc.asyncProperty(fc.tuple(value('uber'), value(encodeURIComponent(fx.vehicleId))), async ([provider, vehicle]) => {
          const path = `/v1/partners/${provider}/vehicles/${vehicle}`;
          const res = await fetch(`${api.url}${path}`, { headers: { 'x-api-key': partnerKey } });
          const answer = { status: res.status, body: await res.json() };
          checkAnswer({ route, path, body: undefined, headers: {} }, answer);
          const own = ['uber', 'UBER'].includes(provider) && vehicle === encodeURIComponent(fx.vehicleId);
          expect([path, answer.status === 200]).toEqual([path, own]);
        }),
        { numRuns: 300, seed: SEED, endOnFailure: true },
      );
    } finally {
      await api.close();
    }
  });

  test.each(['/v1/devices', '/v1/fleet-devices'])('filters built to inject SQL at %s are a 400 naming the filter or match as plain values', async (route) => {
    const before = await fleet.prisma.device.count();
    for (const filter of filterInjections) {
      const c: Case = { route: routes.find((r) => r.path === route)!, path: `${route}?filter=${encodeURIComponent(filter)}`, body: undefined, headers: {} };
      const answer = await call('GET', c.path, undefined);
      checkAnswer(c, answer);
      if (answer.status === 400) expect(answer.body.error.message).toMatch(/^filter: /);
    }
    // A quote inside a value is part of the value: it matches nothing, rather than everything.
    const quoted = await call('GET', `${route}?filter=${encodeURIComponent(`serial="' OR '1'='1"`)}`, undefined);
    expect([quoted.status, quoted.body.totalSize]).toEqual([200, 0]);
    expect(await fleet.prisma.device.count()).toBeGreaterThanOrEqual(before);
  });

  test('page tokens forged to carry a NUL or junk into SQL are a 400 naming pageToken', async () => {
    const token = (text: string) => Buffer.from(text, 'utf8').toString('base64url');
    // The fleet list binds a token to its filter and order by a digest anyone can compute.
    const q = createHash('sha256').update('\nserial\nfalse').digest('base64url').slice(0, 16);
    const forged: [string, string][] = [
      ['/v1/fleet-devices', token(JSON.stringify({ q, v: 'a', s: 'x\u0000' }))],
      ['/v1/fleet-devices', token(JSON.stringify({ q, v: 'a\u0000', s: 'x' }))],
      ['/v1/fleet-devices', token(JSON.stringify({ q, v: 'a', s: "x' OR '1'='1" }))],
      ['/v1/devices', token('x\u0000')],
      ['/v1/devices', token("' OR 1=1 --")],
      ['/v1/deployments', token(`${new Date().toISOString()}|x\u0000`)],
      [`/v1/devices/${fx.serial}/lid-cycles`, token(`1_${randomUUID()}\u0000`)],
    ];
    for (const [path, pageToken] of forged) {
      const answer = await call('GET', `${path}?pageToken=${pageToken}`, undefined);
      expect([path, answer.status, answer.body.error?.message]).toEqual([path, 400, expect.stringMatching(/^pageToken: /)]);
    }
  });

  test('a body nested 40,000 deep, a 90 kB array and prototype keys are answered with 400s (413 over a limit) at every body route', async () => {
    const bodies = [
      `${'['.repeat(40_000)}${']'.repeat(40_000)}`,
      `{"a":${'{"a":'.repeat(15_000)}1${'}'.repeat(15_000)}}`,
      JSON.stringify(Array.from({ length: 30_000 }, (_, i) => i % 10)),
      '{"__proto__":{"polluted":"yes"},"constructor":{"prototype":{"polluted":"yes"}}}',
    ];
    for (const route of routes.filter((r) => validBodies[routeName(r)])) {
      for (const body of bodies) {
        const path = route.path.replace('{serial}', fx.serial).replace('{id}', 'fuzz-none');
        const headers = route.access === 'signature' ? signature(body) : {};
        const c: Case = { route, path, body, headers };
        const answer = await call(route.method, path, body, headers);
        checkAnswer(c, answer);
        // The DriveU webhook takes 16 KiB of raw body, the JSON routes 100 kb: past the limit, 413.
        const limit = route.access === 'signature' ? 16 * 1024 : 100 * 1024;
        const expected = Buffer.byteLength(body) > limit ? 413 : 400;
        expect([routeName(route), body.slice(0, 20), answer.status]).toEqual([routeName(route), body.slice(0, 20), expected]);
      }
    }
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});
