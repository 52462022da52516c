import { randomUUID } from 'node:crypto';
import type { MqttClient } from 'mqtt';
import { searchAttributes, workflowIds } from '../temporal.config';
import { fleetFactsQuery } from '../workflows/robot';
import { eventually, startFleet, uniqueSerial, type TestFleet } from './support/fleet';
import { connectRobot, heartbeat, publish } from './support/robot';

let fleet: TestFleet;
let robot: MqttClient;

beforeAll(async () => {
  fleet = await startFleet({ OFFLINE_AFTER_SECONDS: '4', HEARTBEAT_FORWARD_INTERVAL_SECONDS: '1', FLEET_STALE_AFTER_SECONDS: '30' });
  robot = await connectRobot();
});

afterAll(async () => {
  await robot?.endAsync();
  await fleet?.stop();
});

let clock = Date.parse('2026-03-01T08:00:00.000Z');
/** A fact about `serial`, each later than the one before unless `occurredAt` says otherwise. */
const fact = (serial: string, type: string, data: object, occurredAt = new Date((clock += 1000)).toISOString()) => ({
  id: `ev-${randomUUID()}`,
  type,
  serial,
  occurredAt,
  data,
});

const post = (...events: object[]) => fleet.request('POST', '/v1/operations-events', events.length === 1 ? events[0] : { events });
const get = (serial: string, fresh = false) => fleet.api(`/v1/fleet-devices/${serial}${fresh ? '?fresh=true' : ''}`);
const searchStatus = async (serial: string) =>
  (await fleet.temporal.workflow.getHandle(workflowIds.robot(serial)).describe()).typedSearchAttributes.get(searchAttributes.fleetStatus);

/** Both the fleet view and the robot workflow's FleetStatus search attribute show the status. */
async function expectStatus(serial: string, status: string) {
  await eventually(async () => {
    const res = await get(serial);
    expect(res.status).toBe(200);
    expect(res.body.status).toBe(status);
  });
  await eventually(async () => expect(await searchStatus(serial)).toBe(status));
}

async function onlineRobot(): Promise<string> {
  const serial = uniqueSerial('FV');
  await publish(robot, `robot/${serial}/status`, heartbeat(serial));
  await expectStatus(serial, 'UNDEPLOYED');
  return serial;
}

/** Keeps a robot heartbeating (so it stays online) until the returned function is called. */
function keepAlive(serial: string): () => void {
  const timer = setInterval(() => void publish(robot, `robot/${serial}/status`, heartbeat(serial)).catch(() => undefined), 500);
  return () => clearInterval(timer);
}

test('a trip moves a robot to ON_TRIP, in the fleet view and the FleetStatus search attribute, and back when it completes', async () => {
  const serial = await onlineRobot();
  const stop = keepAlive(serial);
  try {
    const created = await post(fact(serial, 'Trip.Created', { tripId: `trip-${serial}`, tripType: 'DELIVERY', deliveryId: `del-${serial}` }));
    expect(created.status).toBe(200);
    expect(created.body.results).toEqual([{ id: expect.any(String), outcome: 'APPLIED' }]);
    await expectStatus(serial, 'ON_TRIP');
    await post(fact(serial, 'Trip.StageChanged', { tripId: `trip-${serial}`, stage: 'AT_PICKUP' }));
    const onTrip = await eventually(async () => {
      const res = await get(serial);
      expect(res.body.activeTrip?.currentStage).toBe('TRIP_STAGE_AT_PICKUP');
      return res.body;
    });
    expect(onTrip).toMatchObject({
      name: `fleetDevices/${serial}`,
      statusReason: expect.stringContaining(`trip-${serial}`),
      activeTrip: { tripId: `trip-${serial}`, tripType: 'TRIP_TYPE_DELIVERY', deliveryId: `del-${serial}` },
      device: { name: `devices/${serial}`, connectivity: { online: true } },
      replicaMetadata: { tripsLastSynced: expect.any(String), potentiallyStale: false },
    });

    await post(fact(serial, 'Trip.Completed', { tripId: `trip-${serial}`, outcome: 'DELIVERED' }));
    await expectStatus(serial, 'UNDEPLOYED');
    expect((await get(serial)).body.activeTrip).toBeNull();
  } finally {
    stop();
  }
});

test('an FO task moves a robot to NEEDS_MAINTENANCE, UNDER_MAINTENANCE, and back to DEPLOYED when done', async () => {
  const serial = await onlineRobot();
  const stop = keepAlive(serial);
  try {
    await post(fact(serial, 'Deployment.Created', { deploymentId: `dep-${serial}`, locationId: 'LOC-1' }));
    await expectStatus(serial, 'DEPLOYED');
    const task = `task-${serial}`;
    await post(fact(serial, 'FoTask.Created', { taskId: task, taskType: 'BATTERY_SWAP', status: 'PENDING' }));
    await expectStatus(serial, 'NEEDS_MAINTENANCE');
    expect((await get(serial)).body.foTasks).toEqual([
      { taskId: task, taskType: 'FO_TASK_TYPE_BATTERY_SWAP', taskStatus: 'FO_TASK_STATUS_PENDING', createdAt: expect.any(String) },
    ]);
    await post(fact(serial, 'FoTask.StatusChanged', { taskId: task, status: 'IN_PROGRESS' }));
    await expectStatus(serial, 'UNDER_MAINTENANCE');
    await post(fact(serial, 'FoTask.StatusChanged', { taskId: task, status: 'COMPLETED' }));
    await expectStatus(serial, 'DEPLOYED');
    expect((await get(serial)).body).toMatchObject({ foTasks: [], deployment: { deploymentId: `dep-${serial}`, locationId: 'LOC-1' } });
  } finally {
    stop();
  }
});

test('a silent robot turns OFFLINE whatever its facts, and returns to its status when it is heard again', async () => {
  const serial = await onlineRobot();
  const stop = keepAlive(serial);
  await post(fact(serial, 'Deployment.Created', { deploymentId: `dep-${serial}`, locationId: 'LOC-2' }));
  await expectStatus(serial, 'DEPLOYED');
  stop();
  await expectStatus(serial, 'OFFLINE');
  expect((await get(serial)).body).toMatchObject({ device: { connectivity: { online: false } }, deployment: { deploymentId: `dep-${serial}` } });

  await publish(robot, `robot/${serial}/status`, heartbeat(serial));
  await expectStatus(serial, 'DEPLOYED');
});

test('facts are idempotent by id, a changed repeat is a conflict, and an older fact never wins', async () => {
  const serial = await onlineRobot();
  const stop = keepAlive(serial);
  try {
    const trip = `trip-${serial}`;
    const created = fact(serial, 'Trip.Created', { tripId: trip, tripType: 'RETURN' });
    const atDropoff = fact(serial, 'Trip.StageChanged', { tripId: trip, stage: 'AT_DROPOFF' });
    const older = fact(serial, 'Trip.StageChanged', { tripId: trip, stage: 'EN_ROUTE_TO_PICKUP' }, new Date(Date.parse(atDropoff.occurredAt) - 500).toISOString());
    expect((await post(created, atDropoff)).body.results.map((r: { outcome: string }) => r.outcome)).toEqual(['APPLIED', 'APPLIED']);
    expect((await post(older)).body.results).toEqual([{ id: older.id, outcome: 'STALE' }]);
    expect((await post(created, atDropoff)).body.results.map((r: { outcome: string }) => r.outcome)).toEqual(['DUPLICATE', 'DUPLICATE']);
    const task = fact(serial, 'FoTask.Created', { taskId: `task-${serial}`, taskType: 'REPAIR', status: 'PENDING' });
    expect((await post(task, task)).body.results.map((r: { outcome: string }) => r.outcome)).toEqual(['APPLIED', 'DUPLICATE']);
    const conflict = await post({ ...atDropoff, data: { tripId: trip, stage: 'UNLOADING' } });
    expect(conflict.status).toBe(409);
    expect(conflict.body.error.message).toContain(atDropoff.id);

    await expectStatus(serial, 'ON_TRIP');
    expect((await get(serial)).body.activeTrip).toMatchObject({ tripType: 'TRIP_TYPE_RETURN', currentStage: 'TRIP_STAGE_AT_DROPOFF' });
    const stored = await fleet.prisma.operationsEvent.findMany({ where: { serialNumber: serial, type: { startsWith: 'Trip.' } }, orderBy: { occurredAt: 'asc' } });
    expect(stored.map((e) => e.outcome)).toEqual(['APPLIED', 'STALE', 'APPLIED']);
  } finally {
    stop();
  }
});

test('operations events are validated per type, and need the operate scope', async () => {
  const serial = uniqueSerial('FV');
  const bad = await post(fact(serial, 'FoTask.StatusChanged', { taskId: 'k', status: 'DONE' }));
  expect(bad.status).toBe(400);
  expect(bad.body.error.message).toMatch(/^data\.status: /);
  const unknown = await post(fact(serial, 'Trip.Teleported', {}));
  expect(unknown.status).toBe(400);
  expect(unknown.body.error.message).toMatch(/^type: /);
  const batch = await fleet.request('POST', '/v1/operations-events', { events: [fact(serial, 'Deployment.Ended', { deploymentId: 'p' }), { id: 'x' }] });
  expect(batch.body.error.message).toMatch(/^events\.1\./);
  const readOnly = await fleet.request('POST', '/v1/operations-events', fact(serial, 'Deployment.Ended', { deploymentId: 'p' }), fleet.keys.read);
  expect(readOnly.status).toBe(403);
});

test('a robot Operations knows before its first heartbeat is in the fleet view, OFFLINE, with its facts', async () => {
  const serial = uniqueSerial('FV');
  await post(fact(serial, 'FoTask.Created', { taskId: `task-${serial}`, taskType: 'INSPECT', status: 'ASSIGNED' }));
  await expectStatus(serial, 'OFFLINE');
  const res = await get(serial);
  expect(res.body).toMatchObject({ device: { name: `devices/${serial}`, location: null }, foTasks: [{ taskStatus: 'FO_TASK_STATUS_ASSIGNED' }] });
  expect(res.body.replicaMetadata.potentiallyStale).toBe(true);

  await publish(robot, `robot/${serial}/status`, heartbeat(serial));
  await expectStatus(serial, 'NEEDS_MAINTENANCE');
  expect((await get(`NOSUCH${serial}`)).status).toBe(404);
});

test('fresh=true rebuilds a row that went wrong and re-sends the facts to a workflow that lacks them', async () => {
  const serial = await onlineRobot();
  const stop = keepAlive(serial);
  try {
    await post(fact(serial, 'Trip.Created', { tripId: `trip-${serial}`, tripType: 'PICKUP' }));
    await expectStatus(serial, 'ON_TRIP');
    const row = await fleet.prisma.fleetDevice.findUniqueOrThrow({ where: { serialNumber: serial } });
    // A row and a workflow out of step: what a lost write or signal would leave behind.
    await fleet.prisma.fleetDevice.update({ where: { serialNumber: serial }, data: { status: 'UNDEPLOYED', activeTripId: null, factsVersion: row.factsVersion + 5 } });
    expect((await get(serial)).body.status).toBe('UNDEPLOYED');

    const fresh = await get(serial, true);
    expect(fresh.status).toBe(200);
    expect(fresh.body).toMatchObject({ status: 'ON_TRIP', activeTrip: { tripId: `trip-${serial}` }, device: { connectivity: { online: true } } });
    expect((await get(serial)).body.status).toBe('ON_TRIP');
    const handle = fleet.temporal.workflow.getHandle(workflowIds.robot(serial));
    await eventually(async () => expect((await handle.query(fleetFactsQuery))?.version).toBe(row.factsVersion + 6));
  } finally {
    stop();
  }
});

test('a row whose device data is older than the threshold is potentially stale, and can be filtered on', async () => {
  const serial = await onlineRobot();
  expect((await get(serial)).body.replicaMetadata.potentiallyStale).toBe(false);
  // Once it is offline nothing writes its device row, so its age is ours to set.
  await expectStatus(serial, 'OFFLINE');
  expect((await get(serial)).body.replicaMetadata.potentiallyStale).toBe(false);
  await fleet.prisma.device.update({ where: { serialNumber: serial }, data: { updatedAt: new Date(Date.now() - 60_000) } });
  const res = await get(serial);
  expect(res.body.replicaMetadata).toMatchObject({ potentiallyStale: true, deviceLastSynced: expect.any(String) });
  const list = await fleet.api(`/v1/fleet-devices?filter=${encodeURIComponent(`serial=${serial} AND potentiallyStale=true`)}`);
  expect(list.body).toMatchObject({ totalSize: 1, fleetDevices: [{ name: `fleetDevices/${serial}` }] });
});

test("a robot's open lid cycle shows as activeLidCycle", async () => {
  const serial = await onlineRobot();
  const cycleId = randomUUID();
  const startedAt = new Date();
  await fleet.prisma.lidCycle.create({ data: { cycleId, serialNumber: serial, contextId: 'delivery-9', status: 'INIT', startedAt, timeoutSeconds: 300 } });
  expect((await get(serial)).body.activeLidCycle).toEqual({ cycleId, contextId: 'delivery-9', status: 'LID_CYCLE_STATUS_INIT', startedAt: startedAt.toISOString() });
  await fleet.prisma.lidCycle.update({ where: { cycleId }, data: { status: 'COMPLETE', endedAt: new Date() } });
  expect((await get(serial)).body.activeLidCycle).toBeNull();
});

describe('delivery facts', () => {
  const list = async (filter: string) => {
    const res = await fleet.api(`/v1/fleet-devices?filter=${encodeURIComponent(filter)}`);
    expect([filter, res.status]).toEqual([filter, 200]);
    return res.body.fleetDevices.map((d: { name: string }) => d.name.replace('fleetDevices/', ''));
  };

  test("Delivery.StatusChanged fills the trip's merchant, customer and demand ids and the robot's activeDelivery; an older one never wins", async () => {
    const serial = uniqueSerial('FD');
    const [trip, delivery, merchant, customer, demand] = ['trip', 'del', 'merchant', 'customer', 'demand'].map((p) => `${p}-${randomUUID()}`);
    const ids = { merchantId: merchant, customerId: customer, demandId: demand };
    await post(fact(serial, 'Trip.Created', { tripId: trip, tripType: 'DELIVERY', deliveryId: delivery }));
    const pickedUp = fact(serial, 'Delivery.StatusChanged', { deliveryId: delivery, status: 'PICKED_UP', ...ids });
    const older = fact(serial, 'Delivery.StatusChanged', { deliveryId: delivery, status: 'EN_ROUTE_TO_PICKUP' }, new Date(Date.parse(pickedUp.occurredAt) - 500).toISOString());
    expect((await post(pickedUp)).body.results).toEqual([{ id: pickedUp.id, outcome: 'APPLIED' }]);
    expect((await post(older)).body.results).toEqual([{ id: older.id, outcome: 'STALE' }]);

    const res = await get(serial);
    expect(res.body).toMatchObject({
      activeTrip: { tripId: trip, deliveryId: delivery, ...ids },
      activeDelivery: { deliveryId: delivery, status: 'DELIVERY_STATUS_PICKED_UP', ...ids },
      replicaMetadata: { deliveriesLastSynced: expect.any(String) },
    });

    for (const filter of [
      `activeTrip.merchantId=${merchant}`,
      `activeTrip.customerId="${customer}"`,
      `activeDelivery.demandId=${demand} AND activeDelivery.status=PICKED_UP`,
      `activeDelivery.deliveryId=${delivery} AND activeDelivery.status=DELIVERY_STATUS_PICKED_UP`,
    ]) {
      expect(await list(filter)).toEqual([serial]);
    }
    expect(await list(`activeDelivery.deliveryId=${delivery} AND activeDelivery.status!=PICKED_UP`)).toEqual([]);
    const bad = await fleet.api(`/v1/fleet-devices?filter=${encodeURIComponent('activeDelivery.status=LOST')}`);
    expect([bad.status, bad.body.error.message]).toEqual([400, expect.stringMatching(/^filter: activeDelivery\.status takes one of /)]);

    await post(fact(serial, 'Delivery.StatusChanged', { deliveryId: delivery, status: 'DELIVERED' }));
    await post(fact(serial, 'Trip.Completed', { tripId: trip, outcome: 'DELIVERED' }));
    expect((await get(serial)).body).toMatchObject({ activeTrip: null, activeDelivery: null });
    expect(await list(`activeDelivery.merchantId=${merchant}`)).toEqual([]);
  });

  test("a robot's live provider mappings filter the list by provider (any case) and vehicle id", async () => {
    const serial = uniqueSerial('FD');
    const vehicle = `uber-vehicle-${randomUUID()}`;
    const delivery = `del-${randomUUID()}`;
    await post(fact(serial, 'ProviderMapping.Created', { provider: 'uber', providerVehicleId: vehicle, deliveryId: delivery }));
    expect(await list(`providerMappings.providerVehicleId=${vehicle}`)).toEqual([serial]);
    expect(await list(`providerMappings.provider=UBER AND serial=${serial}`)).toEqual([serial]);
    expect(await list(`providerMappings.provider!=uber AND serial=${serial}`)).toEqual([]);
    expect(await list(`providerMappings.provider!=doordash AND serial=${serial}`)).toEqual([serial]);
    expect(await list(`providerMappings.providerVehicleId>=${vehicle} AND serial=${serial}`)).toEqual([serial]);
    await post(fact(serial, 'ProviderMapping.Ended', { provider: 'uber', deliveryId: delivery }));
    expect(await list(`providerMappings.providerVehicleId=${vehicle}`)).toEqual([]);
  });
});
