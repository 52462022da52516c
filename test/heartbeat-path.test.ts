import type { MqttClient } from 'mqtt';
import type { ComponentCode } from '../domain/heartbeat';
import { heartbeatsSignal, robotStateQuery, robotWorkflow } from '../workflows/robot';
import { searchAttributes, workflowIds } from '../temporal.config';
import { eventually, startFleet, uniqueSerial, type TestFleet } from './support/fleet';
import { connectRobot, heartbeat, ingestedHeartbeat, publish } from './support/robot';

let fleet: TestFleet;
let robot: MqttClient;

beforeAll(async () => {
  fleet = await startFleet({ OFFLINE_AFTER_SECONDS: '3', HEARTBEAT_FORWARD_INTERVAL_SECONDS: '1' });
  robot = await connectRobot();
});

afterAll(async () => {
  await robot?.endAsync();
  await fleet?.stop();
});

const events = (serial: string, type?: string) =>
  fleet.prisma.domainEvent.findMany({ where: { serial, ...(type ? { type } : {}) }, orderBy: { seq: 'asc' } });

const robotState = (serial: string) => fleet.temporal.workflow.getHandle(workflowIds.robot(serial)).query(robotStateQuery);

test('a heartbeat over MQTT reaches the projection and the robot workflow', async () => {
  const serial = uniqueSerial();
  const hb = heartbeat(serial, { gps: { lat: 37.1, lng: -122.2 } });
  await publish(robot, `robot/${serial}/status`, hb);

  const device = await eventually(async () => {
    const row = await fleet.prisma.device.findUnique({ where: { serialNumber: serial }, include: { batteries: true, components: true } });
    expect(row?.online).toBe(true);
    return row!;
  });
  expect(device.lat).toBe(37.1);
  expect(device.lastHeartbeatAt?.getTime()).toBe(hb.timestamp);
  expect(device.batteries.map((b) => b.chargePercent)).toEqual([87]);
  expect(device.components.map((c) => c.componentName).sort()).toEqual(['CAMERAS', 'GPS', 'LTE_ROUTERS']);

  const state = await robotState(serial);
  expect(state.online).toBe(true);
  expect(state.lastHeartbeatAt).toBe(hb.timestamp);
  const connectivity = await events(serial, 'Device.ConnectivityChanged');
  expect(connectivity.map((e) => (e.data as { online: boolean }).online)).toEqual([true]);
});

test('a heartbeat shows up through the API, from the projection and live from the workflow', async () => {
  const serial = uniqueSerial();
  await publish(robot, `robot/${serial}/status`, heartbeat(serial, { components: { GPS: 'OK', LTE_ROUTERS: 'TIMEOUT' } }));
  const projected = await eventually(async () => {
    const res = await fleet.api(`/v1/devices/${serial}`);
    expect(res.status).toBe(200);
    expect(res.body.connectivity.online).toBe(true);
    return res.body;
  });
  expect(projected).toMatchObject({
    name: `devices/${serial}`,
    location: { latitude: 37.7749, longitude: -122.4194, speedMph: 5.3 },
    batteries: [{ batteryIndex: 0, chargePercent: 87 }],
    connectivity: { online: true, networkType: 'NETWORK_TYPE_CELLULAR', signalStrength: -85 },
    lidState: { isOpen: false },
  });
  expect(projected.componentStatuses).toContainEqual(expect.objectContaining({ componentName: 'LTE_ROUTERS', statusCode: 'HARDWARE_STATUS_CODE_TIMEOUT' }));

  // A telemetry-only heartbeat goes to the projection at once; fresh=true still shows it.
  const moved = Date.now() + 10;
  await publish(robot, `robot/${serial}/status`, heartbeat(serial, { timestamp: moved, gps: { lat: 37.8, lng: -122.3 }, components: { GPS: 'OK', LTE_ROUTERS: 'TIMEOUT' } }));
  await eventually(async () => expect((await fleet.api(`/v1/devices/${serial}`)).body.location.latitude).toBe(37.8));
  const live = await fleet.api(`/v1/devices/${serial}?fresh=true`);
  expect(live.status).toBe(200);
  expect(live.body).toMatchObject({ connectivity: { online: true }, location: { latitude: 37.8 } });

  const list = await fleet.api(`/v1/devices?filter=${encodeURIComponent(`serial=${serial}`)}`);
  expect(list.body).toMatchObject({ totalSize: 1, devices: [{ name: `devices/${serial}` }] });
  const events = await fleet.api(`/v1/events?serial=${serial}&type=Device.HealthDegraded`);
  expect(events.body.events).toEqual([expect.objectContaining({ type: 'Device.HealthDegraded', serial, data: expect.objectContaining({ componentName: 'LTE_ROUTERS' }) })]);
  expect((await fleet.api(`/v1/devices/NOSUCH${serial}?fresh=true`)).status).toBe(404);
});

test('silence turns a robot offline and a heartbeat brings it back, one event each way', async () => {
  const serial = uniqueSerial();
  for (let i = 0; i < 3; i++) {
    await publish(robot, `robot/${serial}/status`, heartbeat(serial));
    await new Promise((r) => setTimeout(r, 300));
  }
  await eventually(async () => expect((await events(serial)).length).toBe(1));

  const offline = await eventually(async () => {
    const list = await events(serial, 'Device.ConnectivityChanged');
    expect(list).toHaveLength(2);
    return list[1];
  });
  expect(offline.data).toMatchObject({ online: false, previousOnline: true });
  expect((await robotState(serial)).fleetStatus).toBe('OFFLINE');
  expect((await fleet.prisma.device.findUnique({ where: { serialNumber: serial } }))?.online).toBe(false);

  await publish(robot, `robot/${serial}/status`, heartbeat(serial));
  const back = await eventually(async () => {
    const list = await events(serial, 'Device.ConnectivityChanged');
    expect(list).toHaveLength(3);
    return list[2];
  });
  expect(back.data).toMatchObject({ online: true, previousOnline: false });
  // The search attribute is upserted right after the event is recorded.
  await eventually(async () => {
    const description = await fleet.temporal.workflow.getHandle(workflowIds.robot(serial)).describe();
    expect(description.typedSearchAttributes.get(searchAttributes.online)).toBe(true);
  });
});

test('a component fault raises HealthDegraded and its recovery HealthRestored', async () => {
  const serial = uniqueSerial();
  await publish(robot, `robot/${serial}/status`, heartbeat(serial));
  await publish(robot, `robot/${serial}/status`, heartbeat(serial, { timestamp: Date.now() + 1, components: { GPS: 'OK', CAMERAS: 'CRITICAL_FAULT', LTE_ROUTERS: 'OK' } }));
  const degraded = await eventually(async () => {
    const list = await events(serial, 'Device.HealthDegraded');
    expect(list).toHaveLength(1);
    return list[0];
  });
  expect(degraded.data).toMatchObject({ componentName: 'CAMERAS', statusCode: 'HARDWARE_STATUS_CODE_CRITICAL_FAULT' });

  await publish(robot, `robot/${serial}/status`, heartbeat(serial, { timestamp: Date.now() + 2 }));
  await eventually(async () => expect(await events(serial, 'Device.HealthRestored')).toHaveLength(1));
  expect(await events(serial, 'Device.HealthDegraded')).toHaveLength(1);
});

test('a fault and its recovery that a newer heartbeat overtook still raise their events, at the robot times', async () => {
  const serial = uniqueSerial();
  const topic = `robot/${serial}/status`;
  const t = Date.now() - 60_000;
  const codes = (cameras: ComponentCode, lte: ComponentCode = 'OK') => ({ GPS: 'OK', CAMERAS: cameras, LTE_ROUTERS: lte }) as const;
  await publish(robot, topic, heartbeat(serial, { timestamp: t, components: codes('OK') }));
  // The LTE router's READY (no health event) makes the ingest forward this one; the workflow applies it first.
  await publish(robot, topic, heartbeat(serial, { timestamp: t + 10_000, components: codes('OK', 'READY') }));
  await eventually(async () => expect((await robotState(serial)).lastHeartbeatAt).toBe(t + 10_000));
  await publish(robot, topic, heartbeat(serial, { timestamp: t + 2000, components: codes('TIMEOUT', 'READY') }));

  const health = async () =>
    (await events(serial)).filter((e) => e.type.startsWith('Device.Health')).map((e) => [e.type, (e.data as { componentName: string }).componentName, e.occurredAt.getTime() - t]);
  await eventually(async () => expect((await health()).length).toBe(2));
  expect(await health()).toEqual([
    ['Device.HealthDegraded', 'CAMERAS', 2000],
    ['Device.HealthRestored', 'CAMERAS', 10_000],
  ]);
  await publish(robot, topic, heartbeat(serial, { timestamp: t + 2000, components: codes('TIMEOUT', 'READY') }));
  await new Promise((r) => setTimeout(r, 1000));
  expect(await health()).toHaveLength(2);
  expect((await robotState(serial)).components.CAMERAS).toEqual({ code: 'OK', since: t + 10_000 });
});

test('duplicate and out-of-order heartbeats never move state backwards', async () => {
  const serial = uniqueSerial();
  const now = Date.now();
  const newer = heartbeat(serial, { timestamp: now, lid: { is_open: true }, gps: { lat: 10, lng: 10 } });
  const older = heartbeat(serial, { timestamp: now - 5_000, lid: { is_open: false }, gps: { lat: 20, lng: 20 } });
  await publish(robot, `robot/${serial}/status`, newer);
  await publish(robot, `robot/${serial}/status`, newer);
  await publish(robot, `robot/${serial}/status`, older);
  await eventually(async () => expect((await robotState(serial)).lastHeartbeatAt).toBe(now));
  await new Promise((r) => setTimeout(r, 500));

  const state = await robotState(serial);
  expect(state.latest?.lidOpen).toBe(true);
  const row = await fleet.prisma.device.findUnique({ where: { serialNumber: serial } });
  expect([row?.lat, row?.lidIsOpen]).toEqual([10, true]);
  expect(await events(serial, 'Device.ConnectivityChanged')).toHaveLength(1);
});

test('malformed and spoofed messages are rejected and kept, a broken part is dropped and kept; the ingest worker keeps going', async () => {
  const serial = uniqueSerial();
  const other = uniqueSerial();
  const before = await fleet.prisma.rejectedMessage.count();
  await publish(robot, `robot/${serial}/status`, '{not json');
  await publish(robot, `robot/${serial}/status`, heartbeat(other));
  await publish(robot, `robot/${serial}/status`, { ...heartbeat(serial), gps: { lat: 500, lng: 0 } });
  await publish(robot, `robot/${serial}/status`, heartbeat(serial));

  await eventually(async () => expect(await fleet.prisma.rejectedMessage.count()).toBe(before + 3));
  const reasons = (await fleet.prisma.rejectedMessage.findMany({ where: { topic: `robot/${serial}/status` } })).map((r) => r.reason);
  expect(reasons).toEqual(expect.arrayContaining(['payload: not valid JSON', expect.stringMatching(/^serial: .* does not match/), expect.stringMatching(/^gps\.lat: /)]));
  const partial = await fleet.prisma.rejectedMessage.findFirst({ where: { topic: `robot/${serial}/status`, applied: true } });
  expect(partial).toMatchObject({ reason: expect.stringMatching(/^gps\.lat: /), serialNumber: serial });
  await eventually(async () => expect((await fleet.prisma.device.findUnique({ where: { serialNumber: serial } }))?.online).toBe(true));
  expect(await fleet.prisma.device.findUnique({ where: { serialNumber: other } })).toBeNull();
});

test('a robot whose heading reads 361 stays online past the offline timeout, its location following, the heading counted', async () => {
  const serial = uniqueSerial();
  let lat = 0;
  for (let i = 0; i < 10; i++) {
    lat = 30 + i / 100;
    await publish(robot, `robot/${serial}/status`, heartbeat(serial, { gps: { lat, lng: 1, heading: 361 } }));
    await new Promise((r) => setTimeout(r, 500));
  }
  const device = await eventually(async () => {
    const res = await fleet.api(`/v1/devices/${serial}`);
    expect(res.body.location.latitude).toBe(lat);
    return res.body;
  });
  expect(device.connectivity.online).toBe(true);
  expect((await events(serial, 'Device.ConnectivityChanged')).map((e) => (e.data as { online: boolean }).online)).toEqual([true]);
  const kept = await fleet.prisma.rejectedMessage.findMany({ where: { serialNumber: serial } });
  expect(kept.length).toBe(10);
  expect(kept.every((r) => r.applied && r.reason.startsWith('gps.heading: '))).toBe(true);
  expect(await (await fetch(`${fleet.url}/metrics`)).text()).toMatch(/fleet_ingest_parts_dropped_total\{field="gps.heading"\} [1-9]/);
});

test('a robot workflow that continues-as-new keeps its state', async () => {
  const serial = uniqueSerial();
  const handle = fleet.temporal.workflow.getHandle(workflowIds.robot(serial));
  const start = Date.now();
  await publish(robot, `robot/${serial}/status`, heartbeat(serial, { timestamp: start }));
  const firstRun = await eventually(async () => (await handle.describe()).runId);
  // Each change is signalled at once; the test server suggests continue-as-new after 60 events.
  for (let i = 1; i <= 30; i++) {
    const faulty = i % 2 === 1;
    await publish(robot, `robot/${serial}/status`, heartbeat(serial, { timestamp: start + i, components: { GPS: faulty ? 'TIMEOUT' : 'OK' } }));
    await eventually(async () => expect((await robotState(serial)).lastHeartbeatAt).toBe(start + i));
  }
  const description = await handle.describe();
  expect(description.runId).not.toBe(firstRun);
  const state = await robotState(serial);
  expect(state.online).toBe(true);
  expect(state.components.GPS.code).toBe('OK');
  expect(await events(serial, 'Device.HealthDegraded')).toHaveLength(15);
  expect(await events(serial, 'Device.ConnectivityChanged')).toHaveLength(1);
});

test('a robot workflow continues as new after its signals per run, before the server suggests it, and keeps its state', async () => {
  const serial = uniqueSerial();
  const handle = await fleet.temporal.workflow.signalWithStart(robotWorkflow, {
    workflowId: workflowIds.robot(serial),
    taskQueue: fleet.taskQueue,
    args: [{ serial, offlineAfterMs: 60_000, signalsPerRun: 4 }],
    signal: heartbeatsSignal,
    signalArgs: [{ heartbeats: [ingestedHeartbeat(serial, { timestamp: 1_000 })] }],
  });
  const firstRun = await eventually(async () => (await handle.describe()).runId);
  for (let i = 2; i <= 5; i++) {
    await handle.signal(heartbeatsSignal, { heartbeats: [ingestedHeartbeat(serial, { timestamp: i * 1_000, components: { GPS: i % 2 ? 'TIMEOUT' : 'OK' } })] });
    await eventually(async () => expect((await robotState(serial)).lastHeartbeatAt).toBe(i * 1_000));
  }
  const description = await fleet.temporal.workflow.getHandle(workflowIds.robot(serial)).describe();
  expect(description.runId).not.toBe(firstRun);
  // Far fewer events than the test server's suggestion (60): the signal count made it continue.
  const history = await fleet.temporal.workflow.getHandle(workflowIds.robot(serial), firstRun).fetchHistory();
  expect(history.events!.length).toBeLessThan(60);
  expect((await robotState(serial)).components.GPS.code).toBe('TIMEOUT');
});

test('stopping and restarting the worker loses no state', async () => {
  const serial = uniqueSerial();
  await publish(robot, `robot/${serial}/status`, heartbeat(serial));
  await eventually(async () => expect((await robotState(serial)).online).toBe(true));

  await fleet.stopWorker();
  const last = Date.now();
  await publish(robot, `robot/${serial}/status`, heartbeat(serial, { timestamp: last, lid: { is_open: true }, components: { GPS: 'NON_CRITICAL_FAULT' } }));
  await new Promise((r) => setTimeout(r, 500));
  await fleet.startWorker();

  await eventually(async () => {
    const state = await robotState(serial);
    expect(state.lastHeartbeatAt).toBe(last);
    expect(state.latest?.lidOpen).toBe(true);
  });
  await eventually(async () => expect(await events(serial, 'Device.HealthDegraded')).toHaveLength(1));
});
