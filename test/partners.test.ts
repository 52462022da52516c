import { randomUUID } from 'node:crypto';
import type { MqttClient } from 'mqtt';
import { eventually, startFleet, uniqueSerial, type TestFleet } from './support/fleet';
import { connectRobot, heartbeat, publish } from './support/robot';
import { serveApi } from './support/second-api';

/**
 * GET /v1/partners/{provider}/vehicles/{providerVehicleId} (seed GetVirtualRobot): a partner's key
 * sees the robot its vehicle id is mapped to now and its live status, for its own provider only;
 * everything else is a 404. The facts go in through the fleet's API; partners ask a second API
 * process on the same database, which has their keys.
 */

let fleet: TestFleet;
let robot: MqttClient;
let partnerApi: { url: string; close(): Promise<void> };
const KEYS = { uber: `uber-${randomUUID()}`, doordash: `doordash-${randomUUID()}` };
const partnerKeys = (extra = '') => `${fleet.keys.all}:read,operate,deploy;${fleet.keys.read}:read;${KEYS.uber}:partner:uber;${KEYS.doordash}:partner:doordash${extra}`;

beforeAll(async () => {
  fleet = await startFleet();
  robot = await connectRobot();
  partnerApi = await serveApi(fleet, { API_KEYS: partnerKeys() });
});

afterAll(async () => {
  await partnerApi?.close();
  await robot?.endAsync();
  await fleet?.stop();
});

let clock = Date.now();
const fact = (serial: string, type: string, data: object) => ({ id: randomUUID(), type, serial, occurredAt: new Date((clock += 1000)).toISOString(), data });
const post = async (...events: object[]) => {
  const res = await fleet.request('POST', '/v1/operations-events', { events });
  expect(res.status).toBe(200);
};

async function lookUp(provider: string, vehicleId: string, key: string, base = partnerApi.url): Promise<{ status: number; body: any; retryAfter: string | null }> {
  const res = await fetch(`${base}/v1/partners/${provider}/vehicles/${encodeURIComponent(vehicleId)}`, { headers: { 'x-api-key': key } });
  return { status: res.status, body: await res.json(), retryAfter: res.headers.get('retry-after') };
}

/** A robot that has reported where it is, with its lid open. */
async function robotAt(prefix: string, lat: number, lng: number): Promise<string> {
  const serial = uniqueSerial(prefix);
  await publish(robot, `robot/${serial}/status`, heartbeat(serial, { gps: { lat, lng, altitude: 12, speed_mph: 3 }, lid: { is_open: true } }));
  // Its location is the ingest's write; online, the robot workflow's: wait for both.
  await eventually(async () => expect(await fleet.prisma.device.findUnique({ where: { serialNumber: serial }, select: { lat: true, online: true } })).toEqual({ lat, online: true }));
  return serial;
}

const mapped = (serial: string, provider: string, vehicleId: string, deliveryId: string, extra: object = {}) =>
  fact(serial, 'ProviderMapping.Created', { provider, providerVehicleId: vehicleId, deliveryId, ...extra });

test("a partner key for uber gets its mapped vehicle's robot and live status: location, lid, battery and delivery status", async () => {
  const serial = await robotAt('PV', 37.7749, -122.4194);
  const vehicle = `uber-vehicle-${randomUUID()}`;
  const delivery = `uber-delivery-${randomUUID()}`;
  const trip = `trip-${serial}`;
  await post(
    fact(serial, 'Trip.Created', { tripId: trip, tripType: 'DELIVERY', deliveryId: delivery }),
    mapped(serial, 'uber', vehicle, delivery, { dropoff: { lat: 37.7849, lng: -122.4094 } }),
    fact(serial, 'Trip.StageChanged', { tripId: trip, stage: 'EN_ROUTE_TO_DROPOFF' }),
  );

  const res = await lookUp('uber', vehicle, KEYS.uber);
  expect(res.status).toBe(200);
  expect(res.body).toEqual({
    name: `partners/uber/vehicles/${vehicle}`,
    provider: 'uber',
    providerVehicleId: vehicle,
    serial,
    deliveryId: delivery,
    mappedAt: expect.any(String),
    vehicleStatus: {
      vehicleId: vehicle,
      vehicleLocation: { lat: 37.7749, lng: -122.4194 },
      elevation: 12,
      deliveryStatus: 'HEADING_TO_DROPOFF_LOCATION',
      dropoffLocation: { lat: 37.7849, lng: -122.4094 },
      deliveryFailure: null,
      etaToDropoff: expect.any(Number),
      locationUpdatedAt: expect.any(String),
      lidState: { isOpen: true, updatedAt: expect.any(String) },
      batteryPercent: 87,
      online: true,
    },
  });
  expect(res.body.vehicleStatus.etaToDropoff).toBeGreaterThan(0);
  expect((await lookUp('UBER', vehicle, KEYS.uber)).status).toBe(200);

  // Deliveries' newer word, and the robot's next heartbeat, show at once.
  await post(fact(serial, 'Delivery.StatusChanged', { deliveryId: delivery, status: 'AT_DROPOFF', merchantId: 'm-1' }));
  await publish(robot, `robot/${serial}/status`, heartbeat(serial, { gps: { lat: 37.7848, lng: -122.4095 }, lid: { is_open: false } }));
  await eventually(async () => {
    const now = (await lookUp('uber', vehicle, KEYS.uber)).body.vehicleStatus;
    expect(now).toMatchObject({ deliveryStatus: 'ARRIVED_AT_DROPOFF_LOCATION', etaToDropoff: 0, vehicleLocation: { lat: 37.7848, lng: -122.4095 }, lidState: { isOpen: false } });
  });
});

test('404, never 403, for a DoorDash-mapped vehicle, an unmapped id, and after the mapping ended', async () => {
  const serial = await robotAt('PV', 37.7, -122.4);
  const uberVehicle = `uber-vehicle-${randomUUID()}`;
  const doordashVehicle = `dd-vehicle-${randomUUID()}`;
  const [uberDelivery, doordashDelivery] = [`uber-${randomUUID()}`, `dd-${randomUUID()}`];
  await post(mapped(serial, 'uber', uberVehicle, uberDelivery), mapped(serial, 'doordash', doordashVehicle, doordashDelivery));
  try {
    expect((await lookUp('uber', uberVehicle, KEYS.uber)).status).toBe(200);
    expect((await lookUp('doordash', doordashVehicle, KEYS.doordash)).status).toBe(200);

    const unmapped = `never-mapped-${randomUUID()}`;
    const refused = [
      await lookUp('doordash', doordashVehicle, KEYS.uber),
      await lookUp('uber', doordashVehicle, KEYS.uber),
      await lookUp('uber', unmapped, KEYS.uber),
      await lookUp('lyft', unmapped, KEYS.uber),
      await lookUp('uber', uberVehicle, KEYS.doordash),
    ];
    for (const r of refused) {
      expect([r.status, r.body.error.code]).toEqual([404, 'NOT_FOUND']);
      // The same words whether the vehicle exists elsewhere or nowhere.
      expect(r.body.error.message).toMatch(/^no robot is mapped to \w+ vehicle [\w-]+$/);
    }

    await post(fact(serial, 'ProviderMapping.Ended', { provider: 'uber', deliveryId: uberDelivery }));
    const ended = await lookUp('uber', uberVehicle, KEYS.uber);
    expect([ended.status, ended.body.error.message]).toEqual([404, `no robot is mapped to uber vehicle ${uberVehicle}`]);
    expect((await lookUp('uber', uberVehicle, fleet.keys.read)).status).toBe(404);
  } finally {
    await post(fact(serial, 'ProviderMapping.Ended', { provider: 'doordash', deliveryId: doordashDelivery }));
  }
});

test("an internal read key looks up any provider's vehicle; a partner key reaches no other route", async () => {
  const serial = await robotAt('PV', 37.71, -122.41);
  const [uberVehicle, doordashVehicle] = [`uber-vehicle-${randomUUID()}`, `dd-vehicle-${randomUUID()}`];
  const doordashDelivery = `dd-${randomUUID()}`;
  await post(mapped(serial, 'uber', uberVehicle, `uber-${randomUUID()}`), mapped(serial, 'doordash', doordashVehicle, doordashDelivery));
  try {
    for (const [provider, vehicle] of [['uber', uberVehicle], ['doordash', doordashVehicle]]) {
      const res = await lookUp(provider, vehicle, fleet.keys.read, fleet.url);
      expect([res.status, res.body.serial, res.body.provider]).toEqual([200, serial, provider]);
    }
    // test/access.test.ts checks every route; here the fleet view a partner key must not read.
    const fleetView = await fetch(`${partnerApi.url}/v1/fleet-devices/${serial}`, { headers: { 'x-api-key': KEYS.uber } });
    expect(fleetView.status).toBe(403);
  } finally {
    await post(fact(serial, 'ProviderMapping.Ended', { provider: 'doordash', deliveryId: doordashDelivery }));
  }
});

test('the lookup follows a mapping moved from one robot to another, and a newer mapping of the same vehicle id', async () => {
  const [first, second, third] = [await robotAt('PM', 37.1, -122.1), await robotAt('PM', 37.2, -122.2), await robotAt('PM', 37.3, -122.3)];
  const vehicle = `uber-vehicle-${randomUUID()}`;
  const [delivery, nextDelivery] = [`uber-${randomUUID()}`, `uber-${randomUUID()}`];
  const at = async () => {
    const res = await lookUp('uber', vehicle, KEYS.uber);
    return res.status === 200 ? [res.body.serial, res.body.deliveryId, res.body.vehicleStatus.vehicleLocation.lat] : res.status;
  };

  await post(mapped(first, 'uber', vehicle, delivery));
  expect(await at()).toEqual([first, delivery, 37.1]);
  // Deliveries moves the delivery to another robot: the newer Created wins.
  await post(mapped(second, 'uber', vehicle, delivery));
  expect(await at()).toEqual([second, delivery, 37.2]);
  // The vehicle id is mapped again for another delivery, on a third robot.
  await post(mapped(third, 'uber', vehicle, nextDelivery));
  expect(await at()).toEqual([third, nextDelivery, 37.3]);
  await post(fact(third, 'ProviderMapping.Ended', { provider: 'uber', deliveryId: nextDelivery }));
  expect(await at()).toEqual([second, delivery, 37.2]);
  await post(fact(second, 'ProviderMapping.Ended', { provider: 'uber', deliveryId: delivery }));
  expect(await at()).toBe(404);
});

test('every answer to a partner key is rate limited per key: 429 with Retry-After, and other keys keep their own buckets', async () => {
  const other = `uber-other-${randomUUID()}`;
  // One token per 100 s after a burst of 3: the count is exact however slow the machine.
  const api = await serveApi(fleet, { API_KEYS: partnerKeys(`;${other}:partner:uber`), PARTNER_RATE_LIMIT_PER_SECOND: '0.01', PARTNER_RATE_BURST: '3' });
  try {
    const serial = await robotAt('PR', 37.5, -122.5);
    const vehicle = `uber-vehicle-${randomUUID()}`;
    await post(mapped(serial, 'uber', vehicle, `uber-${randomUUID()}`));
    // 404s and 403s use the bucket as answers do.
    expect((await lookUp('uber', `unknown-${randomUUID()}`, KEYS.uber, api.url)).status).toBe(404);
    expect((await fetch(`${api.url}/v1/devices`, { headers: { 'x-api-key': KEYS.uber } })).status).toBe(403);
    expect((await lookUp('uber', vehicle, KEYS.uber, api.url)).status).toBe(200);
    const refused = await lookUp('uber', vehicle, KEYS.uber, api.url);
    expect([refused.status, refused.body.error.code]).toEqual([429, 'RESOURCE_EXHAUSTED']);
    // Up to 100 s: the bucket refills while a busy machine runs the requests before.
    expect(refused.retryAfter).toMatch(/^\d+$/);
    expect(Number(refused.retryAfter)).toBeGreaterThan(0);
    expect(Number(refused.retryAfter)).toBeLessThanOrEqual(100);

    expect((await lookUp('uber', vehicle, other, api.url)).status).toBe(200);
    // Internal keys have the API's own limit, not the partners'.
    for (let i = 0; i < 5; i++) expect((await lookUp('uber', vehicle, fleet.keys.read, api.url)).status).toBe(200);
  } finally {
    await api.close();
  }
});
