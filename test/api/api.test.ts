import { deviceSchema } from '../../domain/device';
import { developmentKey } from '../../api/auth';
import { startApiHarness, type ApiHarness } from './harness';
import { routes } from '../support/routes';

const READER = 'reader-key-0123456789';
const OPERATOR = 'operator-key-0123456789';

let api: ApiHarness;

const t = (iso: string) => new Date(iso);

async function seedDevices(): Promise<void> {
  const devices = [
    { serial: 'R-001', online: true, lidIsOpen: false, networkType: 'CELLULAR', charges: [80, 30] },
    { serial: 'R-002', online: false, lidIsOpen: true, networkType: 'WIFI', charges: [90] },
    { serial: 'R-003', online: true, lidIsOpen: false, networkType: null, charges: [] },
    { serial: 'R-004', online: true, lidIsOpen: false, networkType: 'WIFI', charges: [15] },
    { serial: 'R-005', online: false, lidIsOpen: false, networkType: 'CELLULAR', charges: [55] },
  ];
  for (const d of devices) {
    await api.prisma.device.create({
      data: {
        serialNumber: d.serial,
        online: d.online,
        lidIsOpen: d.lidIsOpen,
        networkType: d.networkType,
        // Written here as the heartbeat upsert would: the lowest battery.
        batteryPercent: d.charges.length === 0 ? null : Math.min(...d.charges),
        batteries: { create: d.charges.map((chargePercent, batteryIndex) => ({ batteryIndex, chargePercent })) },
      },
    });
  }
  await api.prisma.device.update({
    where: { serialNumber: 'R-001' },
    data: {
      lat: 37.7749,
      lng: -122.4194,
      heading: 45.2,
      horizontalAccuracy: 3.5,
      altitude: 10.2,
      speedMph: 5.3,
      locationUpdatedAt: t('2026-01-01T10:00:00.000Z'),
      connectivityUpdatedAt: t('2026-01-01T09:00:00.000Z'),
      signalStrength: -85,
      lidUpdatedAt: t('2026-01-01T08:00:00.000Z'),
      lastHeartbeatAt: t('2026-01-01T10:00:00.000Z'),
      createdAt: t('2026-01-01T07:00:00.000Z'),
      updatedAt: t('2026-01-01T10:00:00.000Z'),
      components: {
        create: [
          { componentName: 'LTE_ROUTERS', statusCode: 'TIMEOUT', updatedAt: t('2026-01-01T10:00:00.000Z') },
          { componentName: 'GPS', statusCode: 'OK', updatedAt: t('2026-01-01T09:30:00.000Z') },
        ],
      },
    },
  });
  await api.prisma.deviceBattery.updateMany({
    where: { serialNumber: 'R-001', batteryIndex: 0 },
    data: { isCharging: true, voltage: 48.2, current: -5.3, temperature: 32.5, updatedAt: t('2026-01-01T10:00:00.000Z') },
  });
}

async function seedEvents(): Promise<void> {
  const events = [
    ['e1', 'Device.ConnectivityChanged', 'R-001'],
    ['e2', 'Device.HealthDegraded', 'R-001'],
    ['e3', 'Device.ConnectivityChanged', 'R-002'],
    ['e4', 'Device.HealthRestored', 'R-001'],
    ['e5', 'Device.ConnectivityChanged', 'R-001'],
  ];
  for (const [i, [id, type, serial]] of events.entries()) {
    await api.prisma.domainEvent.create({
      data: { id, type, serial, occurredAt: new Date(Date.UTC(2026, 0, 1, 12, i)), data: { deviceName: `devices/${serial}`, n: i } },
    });
  }
}

beforeAll(async () => {
  api = await startApiHarness({ API_KEYS: `${READER}:read; ${OPERATOR}:operate,deploy`, LOG_LEVEL: 'silent' });
  await seedDevices();
  await seedEvents();
  await api.prisma.rejectedMessage.createMany({
    data: [
      { topic: 'robot/X/status', payload: '{', reason: 'payload: not valid JSON' },
      { topic: 'robot/Y/status', payload: '{}', reason: 'serial: Invalid input' },
    ],
  });
}, 180_000);

afterAll(async () => {
  await api?.stop();
}, 60_000);

function expectError(res: { status: number; body: any }, status: number, code: string, message?: RegExp) {
  expect(res.status).toBe(status);
  expect(res.body.error.code).toBe(code);
  expect(typeof res.body.error.message).toBe('string');
  if (message) expect(res.body.error.message).toMatch(message);
  expect(JSON.stringify(res.body)).not.toMatch(/\bat .*\.(ts|js):\d+/);
}

describe('authentication', () => {
  it('answers health, readiness, metrics and openapi without a key', async () => {
    expect((await api.get('/healthz')).body).toEqual({ status: 'ok' });
    expect((await api.get('/openapi.json')).status).toBe(200);
    expect((await api.get('/metrics')).status).toBe(200);
  });

  it('is 401 without a key or with an unknown one', async () => {
    expectError(await api.get('/v1/devices'), 401, 'UNAUTHENTICATED', /x-api-key/);
    expectError(await api.get('/v1/devices/R-001', 'not-a-key'), 401, 'UNAUTHENTICATED');
    expectError(await api.get('/v1/no-such-route'), 401, 'UNAUTHENTICATED');
  });

  it('is 403 when the key lacks the read scope', async () => {
    expectError(await api.get('/v1/devices', OPERATOR), 403, 'PERMISSION_DENIED', /"read"/);
    expectError(await api.get('/v1/events', OPERATOR), 403, 'PERMISSION_DENIED');
  });

  it('accepts the development key when API_KEYS is unset', async () => {
    const second = await api.startApp({ LOG_LEVEL: 'silent' });
    const res = await fetch(`${second.url}/v1/devices/R-001`, { headers: { 'x-api-key': developmentKey() } });
    expect(res.status).toBe(200);
    expect((await fetch(`${second.url}/v1/devices/R-001`, { headers: { 'x-api-key': READER } })).status).toBe(401);
  });
});

describe('errors', () => {
  it('is 404 NOT_FOUND for an unknown route', async () => {
    expectError(await api.get('/v1/nothing-here', READER), 404, 'NOT_FOUND');
  });

  it('is 400 naming the field for bad input', async () => {
    expectError(await api.get('/v1/devices/bad$serial', READER), 400, 'INVALID_ARGUMENT', /^serial: /);
    expectError(await api.get('/v1/devices/R-001?fresh=maybe', READER), 400, 'INVALID_ARGUMENT', /^fresh: /);
    expectError(await api.get('/v1/devices?pageSize=501', READER), 400, 'INVALID_ARGUMENT', /^pageSize: /);
    expectError(await api.get('/v1/devices?pageSize=two', READER), 400, 'INVALID_ARGUMENT', /^pageSize: /);
    expectError(await api.get('/v1/devices?pageToken=%%%', READER), 400, 'INVALID_ARGUMENT', /^pageToken: /);
    expectError(await api.get('/v1/devices?pageToken=UiQwMDE', READER), 400, 'INVALID_ARGUMENT', /^pageToken: /);
    expectError(await api.get('/v1/events?limit=1001', READER), 400, 'INVALID_ARGUMENT', /^limit: /);
    expectError(await api.get('/v1/events?after=abc', READER), 400, 'INVALID_ARGUMENT', /^after: /);
    expectError(await api.get('/v1/events?serial=a%20b', READER), 400, 'INVALID_ARGUMENT', /^serial: /);
  });

  it('is 400 naming the filter field or token', async () => {
    const bad = async (filter: string) => api.get(`/v1/devices?filter=${encodeURIComponent(filter)}`, READER);
    expectError(await bad('colour=red'), 400, 'INVALID_ARGUMENT', /^filter: unknown field "colour"/);
    expectError(await bad('online=true AND'), 400, 'INVALID_ARGUMENT', /^filter: expected a field name/);
    expectError(await bad('batteryPercent>lots'), 400, 'INVALID_ARGUMENT', /^filter: batteryPercent takes a number, found "lots"/);
  });

  it('is 400 for a malformed JSON body', async () => {
    const res = await fetch(`${api.url}/v1/operations-events`, {
      method: 'POST',
      headers: { 'x-api-key': READER, 'content-type': 'application/json' },
      body: '{"oops',
    });
    expectError({ status: res.status, body: await res.json() }, 400, 'INVALID_ARGUMENT', /^body: /);
  });

  it('is 404 for an unknown device', async () => {
    expectError(await api.get('/v1/devices/R-999', READER), 404, 'NOT_FOUND', /R-999/);
  });
});

describe('GET /v1/devices/:serial', () => {
  it('answers the Device from the projection', async () => {
    const res = await api.get('/v1/devices/R-001', READER);
    expect(res.status).toBe(200);
    expect(deviceSchema.strict().safeParse(res.body).success).toBe(true);
    expect(res.body).toEqual({
      name: 'devices/R-001',
      location: {
        latitude: 37.7749,
        longitude: -122.4194,
        heading: 45.2,
        horizontalAccuracy: 3.5,
        altitude: 10.2,
        speedMph: 5.3,
        updatedAt: '2026-01-01T10:00:00.000Z',
      },
      batteries: [
        {
          batteryIndex: 0,
          chargePercent: 80,
          isCharging: true,
          voltage: 48.2,
          current: -5.3,
          temperature: 32.5,
          estimatedRangeMeters: 0,
          updatedAt: '2026-01-01T10:00:00.000Z',
        },
        { batteryIndex: 1, chargePercent: 30, isCharging: false, voltage: 0, current: 0, temperature: 0, estimatedRangeMeters: 0, updatedAt: null },
      ],
      connectivity: { online: true, networkType: 'NETWORK_TYPE_CELLULAR', signalStrength: -85, updatedAt: '2026-01-01T09:00:00.000Z' },
      lidState: { isOpen: false, updatedAt: '2026-01-01T08:00:00.000Z' },
      componentStatuses: [
        { componentName: 'GPS', statusCode: 'HARDWARE_STATUS_CODE_OK', message: '', updatedAt: '2026-01-01T09:30:00.000Z' },
        { componentName: 'LTE_ROUTERS', statusCode: 'HARDWARE_STATUS_CODE_TIMEOUT', message: '', updatedAt: '2026-01-01T10:00:00.000Z' },
      ],
      driveuStatus: { streamerStatus: 'DRIVEU_STREAMER_STATUS_UNSPECIFIED', pilotConnected: false, sessionId: '', updatedAt: null },
      greengrassStatus: { coreStatus: 'GREENGRASS_CORE_STATUS_UNSPECIFIED', installedComponents: [], updatedAt: null },
      createdAt: '2026-01-01T07:00:00.000Z',
      updatedAt: '2026-01-01T10:00:00.000Z',
    });
  });

  it('answers a device that never sent a location with location null', async () => {
    const res = await api.get('/v1/devices/R-003', READER);
    expect(res.status).toBe(200);
    expect(res.body.location).toBeNull();
    expect(res.body.batteries).toEqual([]);
    expect(res.body.connectivity.networkType).toBe('NETWORK_TYPE_UNSPECIFIED');
  });

  it('is 503 UNAVAILABLE with fresh=true while Temporal is unreachable', async () => {
    const started = Date.now();
    expectError(await api.get('/v1/devices/R-001?fresh=true', READER), 503, 'UNAVAILABLE');
    expect(Date.now() - started).toBeLessThan(15_000);
  }, 30_000);
});

describe('GET /v1/devices', () => {
  const serials = (body: any) => body.devices.map((d: { name: string }) => d.name.replace('devices/', ''));

  it('pages through all devices in serial order', async () => {
    const seen: string[][] = [];
    let token = '';
    do {
      const res = await api.get(`/v1/devices?pageSize=2${token ? `&pageToken=${token}` : ''}`, READER);
      expect(res.status).toBe(200);
      expect(res.body.totalSize).toBe(5);
      seen.push(serials(res.body));
      token = res.body.nextPageToken;
    } while (token && seen.length < 10);
    expect(seen).toEqual([['R-001', 'R-002'], ['R-003', 'R-004'], ['R-005']]);
  });

  it('defaults to one page of up to 50', async () => {
    const res = await api.get('/v1/devices', READER);
    expect(serials(res.body)).toEqual(['R-001', 'R-002', 'R-003', 'R-004', 'R-005']);
    expect(res.body.nextPageToken).toBe('');
    for (const device of res.body.devices) expect(deviceSchema.strict().safeParse(device).success).toBe(true);
  });

  it.each([
    ['online=true', ['R-001', 'R-003', 'R-004']],
    ['online=false', ['R-002', 'R-005']],
    ['lidOpen=true', ['R-002']],
    ['batteryPercent<50', ['R-001', 'R-004']],
    ['batteryPercent>=55', ['R-002', 'R-005']],
    ['networkType=WIFI OR lidOpen=true', ['R-002', 'R-004']],
    ['networkType!=CELLULAR', ['R-002', 'R-003', 'R-004']],
    ['(online=false OR batteryPercent<20) AND networkType=NETWORK_TYPE_WIFI', ['R-002', 'R-004']],
    ['serial>R-003', ['R-004', 'R-005']],
    ['serial="R-001"', ['R-001']],
    [`serial="R-001' OR '1'='1"`, []],
    [`serial="x'; DROP TABLE devices; --"`, []],
  ])('filters %s', async (filter, expected) => {
    const res = await api.get(`/v1/devices?filter=${encodeURIComponent(filter)}`, READER);
    expect(res.status).toBe(200);
    expect(serials(res.body)).toEqual(expected);
    expect(res.body.totalSize).toBe(expected.length);
  });

  it('pages within a filter and counts all matches', async () => {
    const first = await api.get('/v1/devices?filter=online%3Dtrue&pageSize=2', READER);
    expect(serials(first.body)).toEqual(['R-001', 'R-003']);
    expect(first.body.totalSize).toBe(3);
    const second = await api.get(`/v1/devices?filter=online%3Dtrue&pageSize=2&pageToken=${first.body.nextPageToken}`, READER);
    expect(serials(second.body)).toEqual(['R-004']);
    expect(second.body.nextPageToken).toBe('');
    expect(await api.prisma.device.count()).toBe(5);
  });
});

describe('GET /v1/events', () => {
  const ids = (body: any) => body.events.map((e: { id: string }) => e.id);

  it('pages by cursor in the order events were recorded', async () => {
    const first = await api.get('/v1/events?limit=2', READER);
    expect(first.status).toBe(200);
    expect(ids(first.body)).toEqual(['e1', 'e2']);
    expect(first.body.events[0]).toEqual({
      id: 'e1',
      type: 'Device.ConnectivityChanged',
      serial: 'R-001',
      occurredAt: '2026-01-01T12:00:00.000Z',
      data: { deviceName: 'devices/R-001', n: 0 },
    });
    const second = await api.get(`/v1/events?limit=2&after=${first.body.nextCursor}`, READER);
    expect(ids(second.body)).toEqual(['e3', 'e4']);
    const third = await api.get(`/v1/events?limit=2&after=${second.body.nextCursor}`, READER);
    expect(ids(third.body)).toEqual(['e5']);
    const empty = await api.get(`/v1/events?limit=2&after=${third.body.nextCursor}`, READER);
    expect(ids(empty.body)).toEqual([]);
    expect(empty.body.nextCursor).toBe(third.body.nextCursor);
  });

  it('filters by type and serial', async () => {
    expect(ids((await api.get('/v1/events?type=Device.ConnectivityChanged', READER)).body)).toEqual(['e1', 'e3', 'e5']);
    expect(ids((await api.get('/v1/events?serial=R-002', READER)).body)).toEqual(['e3']);
    expect(ids((await api.get('/v1/events?type=Device.ConnectivityChanged&serial=R-001', READER)).body)).toEqual(['e1', 'e5']);
    const none = await api.get('/v1/events?type=Nothing.Happened', READER);
    expect(none.body).toEqual({ events: [], nextCursor: null });
  });
});

describe('operations routes', () => {
  it('is 503 on /readyz naming Temporal while PostgreSQL answers', async () => {
    const started = Date.now();
    const res = await api.get('/readyz');
    expectError(res, 503, 'UNAVAILABLE', /temporal/);
    expect(res.body.error.details.checks.postgres).toBe('ok');
    expect(res.body.error.details.checks.temporal).not.toBe('ok');
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('lists every route in /openapi.json with the API key scheme', async () => {
    const doc = (await api.get('/openapi.json')).body;
    expect(doc.openapi).toMatch(/^3\./);
    expect(Object.keys(doc.paths).sort()).toEqual([...new Set(routes.map((r) => r.path))].sort());
    expect(doc.components.securitySchemes.ApiKey).toEqual({ type: 'apiKey', in: 'header', name: 'x-api-key' });
    expect(doc.paths['/v1/devices'].get.security).toEqual([{ ApiKey: [] }]);
    const params = doc.paths['/v1/devices'].get.parameters.map((p: { name: string }) => p.name);
    expect(params).toEqual(['filter', 'pageSize', 'pageToken']);
    expect(doc.components.schemas.Device.properties).toHaveProperty('componentStatuses');
  });

  it('serves Prometheus metrics with the rejected-messages gauge and request counts', async () => {
    await api.get('/v1/devices', READER);
    const res = await api.get('/metrics');
    expect(res.type).toMatch(/^text\/plain/);
    expect(res.text).toMatch(/^fleet_rejected_messages_stored 2$/m);
    expect(res.text).toMatch(/fleet_http_requests_total\{method="GET",route="\/v1\/devices",status="200"\} \d+/);
    expect(res.text).toContain('fleet_http_request_duration_seconds_bucket');
    expect(res.text).toContain('process_cpu_user_seconds_total');
  });
});
