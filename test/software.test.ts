import { randomUUID } from 'node:crypto';
import type { MqttClient } from 'mqtt';
import { ensureSoftwareStatusPoller } from '../clients/software-status';
import { eventually, startFleet, uniqueSerial, type TestFleet } from './support/fleet';
import { connectRobot, heartbeat, publish } from './support/robot';

/**
 * Robots' software status: the poller workflow reads Greengrass (through the real SDK, against
 * the local service) into the projection, which `/software` and the Device's greengrassStatus
 * show; `?fresh=true` reads Greengrass directly.
 */

let fleet: TestFleet;
let robot: MqttClient;
const pollerId = `software-status-poller:${randomUUID()}`;

beforeAll(async () => {
  fleet = await startFleet();
  robot = await connectRobot();
  await ensureSoftwareStatusPoller(fleet.temporal, {
    config: { GREENGRASS_POLL_DEVICES_PER_SECOND: 1000, GREENGRASS_POLL_MIN_INTERVAL_SECONDS: 1 },
    taskQueue: fleet.taskQueue,
    workflowId: pollerId,
  });
});

afterAll(async () => {
  await fleet?.temporal.workflow.getHandle(pollerId).terminate('test over').catch(() => undefined);
  await robot?.endAsync();
  await fleet?.stop();
});

async function knownRobot(): Promise<string> {
  const serial = uniqueSerial('SW');
  await publish(robot, `robot/${serial}/status`, heartbeat(serial));
  await eventually(async () => expect(await fleet.prisma.device.count({ where: { serialNumber: serial } })).toBe(1));
  return serial;
}

test("the poller keeps each robot's Greengrass status in the projection, and the Device shows it", async () => {
  const serial = await knownRobot();
  const software = await eventually(async () => {
    const res = await fleet.api(`/v1/devices/${serial}/software`);
    expect(res.status).toBe(200);
    expect(res.body.coreDevice?.status).toBe('HEALTHY');
    return res.body;
  });
  expect(software.installedComponents).toEqual([expect.objectContaining({ componentName: 'aws.greengrass.Nucleus', lifecycleState: 'FINISHED' })]);
  expect(software.updatedAt).toEqual(expect.any(String));

  // A component breaks on the robot: the next sweep brings it into the projection.
  await fleet.greengrass.control({ action: 'setComponentState', thingName: serial, componentName: 'com.coco.Lidar', lifecycleState: 'BROKEN' });
  const device = await eventually(async () => {
    const res = await fleet.api(`/v1/devices/${serial}`);
    expect(res.body.greengrassStatus.coreStatus).toBe('GREENGRASS_CORE_STATUS_UNHEALTHY');
    return res.body;
  });
  expect(device.greengrassStatus.installedComponents).toContainEqual({
    componentName: 'com.coco.Lidar',
    componentVersion: '0.0.0',
    lifecycleState: 'COMPONENT_LIFECYCLE_STATE_BROKEN',
  });
  // The fleet view reads the same rows in one statement of its own (store/fleet.ts): the same Device.
  const { updatedAt: _updatedAt, ...same } = device;
  const one = (await fleet.api(`/v1/fleet-devices/${serial}`)).body.device;
  const listed = (await fleet.api(`/v1/fleet-devices?filter=${encodeURIComponent(`serial=${serial}`)}`)).body.fleetDevices[0].device;
  for (const d of [one, listed]) expect(d).toEqual({ ...same, updatedAt: expect.any(String) });
});

test('fresh=true reads Greengrass now, with effective deployments, and refreshes the projection', async () => {
  const serial = await knownRobot();
  const targetArn = `arn:aws:iot:us-east-1:000000000000:thing/${serial}`;
  const started = await fleet.request('POST', '/v1/deployments', { targetArn, components: { 'com.coco.Maps': { componentVersion: '2.0.1' } } });
  await eventually(async () => expect((await fleet.api(`/v1/deployments/${started.body.deploymentId}`)).body.status).toBe('SUCCEEDED'), 60_000, 250);

  const fresh = await fleet.api(`/v1/devices/${serial}/software?fresh=true`);
  expect(fresh.status).toBe(200);
  expect(fresh.body.installedComponents).toContainEqual(expect.objectContaining({ componentName: 'com.coco.Maps', componentVersion: '2.0.1', lifecycleState: 'RUNNING' }));
  expect(fresh.body.effectiveDeployments).toEqual([
    expect.objectContaining({ targetArn, coreDeviceExecutionStatus: 'SUCCEEDED', deploymentName: expect.stringContaining(started.body.deploymentId) }),
  ]);
  const row = await fleet.prisma.deviceSoftware.findUnique({ where: { serialNumber: serial } });
  expect(row?.polledAt.toISOString()).toBe(fresh.body.updatedAt);
});

test('software of an unknown robot is a 404; a read-only key may read it', async () => {
  expect((await fleet.api(`/v1/devices/${uniqueSerial('NONE')}/software`)).status).toBe(404);
  expect((await fleet.api(`/v1/devices/${uniqueSerial('NONE')}/software?fresh=true`)).status).toBe(404);
  expect((await fleet.api('/v1/devices/bad*serial/software')).status).toBe(400);
  const serial = await knownRobot();
  expect((await fleet.request('GET', `/v1/devices/${serial}/software`, undefined, fleet.keys.read)).status).toBe(200);
});

test('Greengrass throttling a fresh read is a 429', async () => {
  const serial = await knownRobot();
  // Every attempt the SDK makes (and any the poller makes meanwhile) is throttled.
  await fleet.greengrass.control({ action: 'throttle', requests: 1000, pathContains: `/coreDevices/${serial}` });
  const res = await fleet.api(`/v1/devices/${serial}/software?fresh=true`);
  expect(res.status).toBe(429);
  expect(res.body.error.code).toBe('RESOURCE_EXHAUSTED');
  await fleet.greengrass.control({ action: 'reset' });
});
