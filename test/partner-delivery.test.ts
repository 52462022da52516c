import { randomUUID } from 'node:crypto';
import type { MqttClient } from 'mqtt';
import { createPartnerRegistry } from '../activities/partners';
import { loadConfig } from '../config';
import { startLocalDoorDash, type LocalDoorDash } from '../infra/doordash-local';
import { workflowIds } from '../temporal.config';
import { partnerDeliveryQuery } from '../workflows/partner-delivery';
import { eventually, startFleet, uniqueSerial, type TestFleet } from './support/fleet';
import { connectRobot, heartbeat, publish } from './support/robot';

let doordash: LocalDoorDash;
let fleet: TestFleet;
let robot: MqttClient;

beforeAll(async () => {
  doordash = await startLocalDoorDash();
  const env = {
    PARTNER_PUSH_INTERVAL_SECONDS: '1',
    DOORDASH_BASE_URL: doordash.url,
    DOORDASH_DEVELOPER_ID: doordash.credentials.developerId,
    DOORDASH_KEY_ID: doordash.credentials.keyId,
    DOORDASH_SIGNING_SECRET: doordash.credentials.signingSecret,
  };
  fleet = await startFleet(env, { partners: createPartnerRegistry(loadConfig({ ...process.env, ...env })) });
  robot = await connectRobot();
});

afterAll(async () => {
  await robot?.endAsync();
  await fleet?.stop();
  await doordash?.stop();
});

let clock = Date.now();
const fact = (serial: string, type: string, data: object) => ({ id: randomUUID(), type, serial, occurredAt: new Date((clock += 1000)).toISOString(), data });
const post = async (...events: object[]) => {
  const res = await fleet.request('POST', '/v1/operations-events', { events });
  expect(res.status).toBe(200);
};

type Delivery = { serial: string; vehicleId: string; deliveryId: string; tripId: string };

/** A robot with a location, on a DoorDash delivery. */
async function startDelivery(): Promise<Delivery> {
  const serial = uniqueSerial('PD');
  const d = { serial, vehicleId: `dd-vehicle-${serial}`, deliveryId: `dd-delivery-${serial}`, tripId: `trip-${serial}` };
  await publish(robot, `robot/${serial}/status`, heartbeat(serial, { gps: { lat: 37.7749, lng: -122.4194, altitude: 12, speed_mph: 3 } }));
  await eventually(async () => expect((await fleet.prisma.device.findUnique({ where: { serialNumber: serial } }))?.lat).toBe(37.7749));
  await post(
    fact(serial, 'Trip.Created', { tripId: d.tripId, tripType: 'DELIVERY', deliveryId: d.deliveryId }),
    fact(serial, 'ProviderMapping.Created', { provider: 'doordash', providerVehicleId: d.vehicleId, deliveryId: d.deliveryId, dropoff: { lat: 37.7849, lng: -122.4094 } }),
  );
  await eventually(() => expect(pushesOf(d).length).toBeGreaterThan(0));
  return d;
}

const pushesOf = (d: Delivery) => doordash.pushes.filter((p) => p.body.vehicle_id === d.vehicleId);
const statusesOf = (d: Delivery) => pushesOf(d).map((p) => p.body.delivery_status);
const handle = (d: Delivery) => fleet.temporal.workflow.getHandle(workflowIds.partnerDelivery('doordash', d.deliveryId));

async function endDelivery(d: Delivery): Promise<void> {
  await post(fact(d.serial, 'ProviderMapping.Ended', { provider: 'doordash', deliveryId: d.deliveryId }));
  await eventually(async () => expect((await handle(d).describe()).status.name).toBe('COMPLETED'));
}

test('a DoorDash delivery is pushed on every stage change and on the interval, with the latest location, and ends with its mapping', async () => {
  const d = await startDelivery();
  expect(pushesOf(d)[0].body).toMatchObject({
    vehicle_id: d.vehicleId,
    delivery_status: 'VEHICLE_ASSIGNED',
    vehicle_location: { lat: 37.7749, lng: -122.4194 },
    elevation: 12,
    dropoff_location: { lat: 37.7849, lng: -122.4094 },
    delivery_failure: null,
  });
  const description = await handle(d).describe();
  expect(description.typedSearchAttributes.get({ name: 'RobotSerial', type: 'KEYWORD' } as never)).toBe(d.serial);

  await post(fact(d.serial, 'Trip.StageChanged', { tripId: d.tripId, stage: 'EN_ROUTE_TO_PICKUP' }));
  await eventually(() => expect(statusesOf(d)).toContain('HEADING_TO_PICKUP_LOCATION'));
  // No change for a while: the interval (1 s here) keeps pushing, with where the robot is now.
  await publish(robot, `robot/${d.serial}/status`, heartbeat(d.serial, { gps: { lat: 37.78, lng: -122.41 } }));
  await eventually(() => {
    const since = pushesOf(d).filter((p) => p.body.delivery_status === 'HEADING_TO_PICKUP_LOCATION');
    expect(since.length).toBeGreaterThanOrEqual(3);
    expect(since[since.length - 1].body.vehicle_location).toEqual({ lat: 37.78, lng: -122.41 });
  });

  await post(fact(d.serial, 'Trip.StageChanged', { tripId: d.tripId, stage: 'EN_ROUTE_TO_DROPOFF' }));
  const heading = await eventually(() => {
    const p = pushesOf(d).find((x) => x.body.delivery_status === 'HEADING_TO_DROPOFF_LOCATION');
    expect(p).toBeDefined();
    return p!;
  });
  expect(heading.body.eta_to_dropoff).toBeGreaterThan(0);

  await post(fact(d.serial, 'Trip.Completed', { tripId: d.tripId, outcome: 'DELIVERED' }));
  await eventually(() => expect(statusesOf(d)).toContain('DELIVERED'));
  await endDelivery(d);
  const seen = statusesOf(d).filter((s, i, all) => s !== all[i - 1]);
  expect(seen).toEqual(['VEHICLE_ASSIGNED', 'HEADING_TO_PICKUP_LOCATION', 'HEADING_TO_DROPOFF_LOCATION', 'DELIVERED']);
  expect(doordash.attempts.every((a) => a.status !== 401 && a.status !== 400)).toBe(true);
});

test("Deliveries' status reaches DoorDash at once; an older one never wins, a newer stage does", async () => {
  const d = await startDelivery();
  try {
    const pickedUp = fact(d.serial, 'Delivery.StatusChanged', { deliveryId: d.deliveryId, status: 'PICKED_UP', merchantId: `m-${d.serial}` });
    await post(pickedUp);
    await eventually(() => expect(statusesOf(d)).toContain('PICKED_UP'));
    const older = { ...fact(d.serial, 'Delivery.StatusChanged', { deliveryId: d.deliveryId, status: 'EN_ROUTE_TO_PICKUP' }), occurredAt: new Date(Date.parse(pickedUp.occurredAt) - 500).toISOString() };
    const stale = await fleet.request('POST', '/v1/operations-events', older);
    expect(stale.body.results).toEqual([{ id: older.id, outcome: 'STALE' }]);
    await post(fact(d.serial, 'Trip.StageChanged', { tripId: d.tripId, stage: 'EN_ROUTE_TO_DROPOFF' }));
    await eventually(() => expect(statusesOf(d)).toContain('HEADING_TO_DROPOFF_LOCATION'));
    const seen = statusesOf(d).filter((s, i, all) => s !== all[i - 1]);
    expect(seen).toEqual(['VEHICLE_ASSIGNED', 'PICKED_UP', 'HEADING_TO_DROPOFF_LOCATION']);
    expect((await handle(d).query(partnerDeliveryQuery)).snapshot).toMatchObject({ deliveryStatus: 'PICKED_UP', stage: 'EN_ROUTE_TO_DROPOFF' });
  } finally {
    await endDelivery(d);
  }
});

test('a 429 is retried after its Retry-After and the push arrives', async () => {
  const d = await startDelivery();
  try {
    doordash.throttleNext(1, 1);
    await post(fact(d.serial, 'Trip.StageChanged', { tripId: d.tripId, stage: 'AT_PICKUP' }));
    const throttled = await eventually(() => {
      const a = doordash.attempts.find((x) => x.status === 429);
      expect(a).toBeDefined();
      return a!;
    });
    // The same push (same idempotency key) went through on its retry.
    await eventually(() => expect(doordash.pushes.some((p) => p.idempotencyKey === throttled.idempotencyKey && p.body.vehicle_id === d.vehicleId)).toBe(true));
    await eventually(() => expect(statusesOf(d)).toContain('ARRIVED_AT_PICKUP_LOCATION'));
  } finally {
    await endDelivery(d);
  }
});

test('a 5xx is retried; another 4xx is not, and is recorded as an event while pushes go on', async () => {
  const d = await startDelivery();
  try {
    doordash.failNext(2, 503);
    await post(fact(d.serial, 'Trip.StageChanged', { tripId: d.tripId, stage: 'LOADING' }));
    await eventually(() => expect(statusesOf(d)).toContain('ARRIVED_AT_PICKUP_LOCATION'));
    const failedKeys = doordash.attempts.filter((a) => a.status === 503).map((a) => a.idempotencyKey);
    expect(failedKeys).toHaveLength(2);
    expect(doordash.pushes.filter((p) => p.idempotencyKey === failedKeys[0])).toHaveLength(1);

    doordash.failNext(1, 422);
    await post(fact(d.serial, 'Trip.StageChanged', { tripId: d.tripId, stage: 'LOADED' }));
    const event = await eventually(async () => {
      const events = await fleet.prisma.domainEvent.findMany({ where: { serial: d.serial, type: 'PartnerDelivery.PushRejected' } });
      expect(events).toHaveLength(1);
      return events[0];
    });
    // The next push after the injection: the LOADED change, or an interval push just before it.
    expect(event.data).toMatchObject({ provider: 'doordash', deliveryId: d.deliveryId, httpStatus: 422, stage: expect.stringMatching(/^LOAD(ING|ED)$/) });
    const rejected = doordash.attempts.filter((a) => a.status === 422);
    expect(rejected).toHaveLength(1);
    expect(doordash.attempts.filter((a) => a.idempotencyKey === rejected[0].idempotencyKey)).toHaveLength(1);
    // The interval push after the rejection gets through.
    await eventually(() => expect(statusesOf(d)).toContain('PICKED_UP'));
    const listed = await fleet.api(`/v1/events?serial=${d.serial}&type=PartnerDelivery.PushRejected`);
    expect(listed.body.events).toHaveLength(1);
    expect((await handle(d).query(partnerDeliveryQuery)).failures).toBe(1);
  } finally {
    await endDelivery(d);
  }
});

test('an Uber delivery is pulled: its workflow pushes nothing, and records Started, each change of status and Ended', async () => {
  const serial = uniqueSerial('PU');
  const u = { vehicleId: `uber-vehicle-${serial}`, deliveryId: `uber-delivery-${serial}`, tripId: `trip-${serial}` };
  await publish(robot, `robot/${serial}/status`, heartbeat(serial, { gps: { lat: 37.7749, lng: -122.4194 } }));
  await post(
    fact(serial, 'Trip.Created', { tripId: u.tripId, tripType: 'DELIVERY', deliveryId: u.deliveryId }),
    fact(serial, 'ProviderMapping.Created', { provider: 'uber', providerVehicleId: u.vehicleId, deliveryId: u.deliveryId }),
  );
  const lifecycle = async () =>
    (await fleet.prisma.domainEvent.findMany({ where: { serial, type: { startsWith: 'PartnerDelivery.' } }, orderBy: { seq: 'asc' } })).map((e) => [
      e.type,
      (e.data as { deliveryStatus: string }).deliveryStatus,
    ]);
  await eventually(async () => expect(await lifecycle()).toEqual([['PartnerDelivery.Started', 'ASSIGNED']]));
  const uberHandle = fleet.temporal.workflow.getHandle(workflowIds.partnerDelivery('uber', u.deliveryId));
  expect((await uberHandle.describe()).typedSearchAttributes.get({ name: 'RobotSerial', type: 'KEYWORD' } as never)).toBe(serial);

  await post(fact(serial, 'Trip.StageChanged', { tripId: u.tripId, stage: 'EN_ROUTE_TO_PICKUP' }));
  await eventually(async () => expect((await lifecycle()).at(-1)).toEqual(['PartnerDelivery.StatusChanged', 'EN_ROUTE_TO_PICKUP']));
  await post(fact(serial, 'Trip.StageChanged', { tripId: u.tripId, stage: 'AT_PICKUP' }));
  await eventually(async () => expect((await lifecycle()).at(-1)).toEqual(['PartnerDelivery.StatusChanged', 'AT_PICKUP']));
  // LOADING reads as AT_PICKUP too: no event.
  await post(fact(serial, 'Trip.StageChanged', { tripId: u.tripId, stage: 'LOADING' }));
  await post(fact(serial, 'Delivery.StatusChanged', { deliveryId: u.deliveryId, status: 'PICKED_UP' }));
  await eventually(async () => expect((await lifecycle()).at(-1)).toEqual(['PartnerDelivery.StatusChanged', 'PICKED_UP']));
  await post(fact(serial, 'ProviderMapping.Ended', { provider: 'uber', deliveryId: u.deliveryId }));
  await eventually(async () => expect((await uberHandle.describe()).status.name).toBe('COMPLETED'));

  expect(await lifecycle()).toEqual([
    ['PartnerDelivery.Started', 'ASSIGNED'],
    ['PartnerDelivery.StatusChanged', 'EN_ROUTE_TO_PICKUP'],
    ['PartnerDelivery.StatusChanged', 'AT_PICKUP'],
    ['PartnerDelivery.StatusChanged', 'PICKED_UP'],
    ['PartnerDelivery.Ended', 'PICKED_UP'],
  ]);
  expect((await uberHandle.query(partnerDeliveryQuery)).pushes).toBe(0);
  expect(doordash.pushes.filter((p) => p.body.vehicle_id === u.vehicleId)).toEqual([]);
  const listed = await fleet.api(`/v1/events?serial=${serial}&type=PartnerDelivery.Ended`);
  expect(listed.body.events[0].data).toMatchObject({ provider: 'uber', deliveryId: u.deliveryId, providerVehicleId: u.vehicleId, deliveryStatus: 'PICKED_UP' });
});

test('a provider no module names gets no workflow, and a delivery that ended first never starts', async () => {
  const serial = uniqueSerial('PD');
  const lyft = `lyft-${serial}`;
  await post(fact(serial, 'ProviderMapping.Created', { provider: 'lyft', providerVehicleId: 'l1', deliveryId: lyft }));
  await expect(fleet.temporal.workflow.getHandle(workflowIds.partnerDelivery('lyft', lyft)).describe()).rejects.toThrow();
  expect((await fleet.api(`/v1/fleet-devices/${serial}`)).body.providerMappings).toEqual([
    { provider: 'lyft', providerVehicleId: 'l1', deliveryId: lyft, createdAt: expect.any(String) },
  ]);

  const late = `dd-late-${serial}`;
  const created = fact(serial, 'ProviderMapping.Created', { provider: 'doordash', providerVehicleId: 'v', deliveryId: late });
  await post(fact(serial, 'ProviderMapping.Ended', { provider: 'doordash', deliveryId: late }));
  await post(created);
  await expect(fleet.temporal.workflow.getHandle(workflowIds.partnerDelivery('doordash', late)).describe()).rejects.toThrow();
});
