import type { MqttClient } from 'mqtt';
import { robotStateQuery } from '../workflows/robot';
import { workflowIds } from '../temporal.config';
import { eventually, startFleet, uniqueSerial, type TestFleet } from './support/fleet';
import { connectRobot, heartbeat, publish } from './support/robot';

/**
 * The robot inbox between ingest and Temporal: heartbeats are acknowledged once written, whether or
 * not their robot's workflow can be signalled; what the workflow must see waits in `robot_inbox`
 * in order and reaches it once it can be signalled.
 */

let fleet: TestFleet;
let robot: MqttClient;
const unreachable = new Set<string>();
const attempts = new Map<string, number>();

beforeAll(async () => {
  fleet = await startFleet({ OFFLINE_AFTER_SECONDS: '60' }, {}, {
    interceptSignal: (signal) => async (serial, heartbeats) => {
      attempts.set(serial, (attempts.get(serial) ?? 0) + 1);
      if (unreachable.has(serial)) throw new Error(`robot ${serial} is unreachable in this test`);
      await signal(serial, heartbeats);
    },
  });
  robot = await connectRobot();
});

afterAll(async () => {
  await robot?.endAsync();
  await fleet?.stop();
});

const inboxTimestamps = async (serial: string) =>
  (await fleet.prisma.robotInbox.findMany({ where: { serialNumber: serial }, orderBy: { id: 'asc' } })).map((r) => (r.heartbeat as { timestamp: number }).timestamp);

test('heartbeats of a robot whose workflow cannot be signalled are acknowledged and projected, wait in order, and reach it later', async () => {
  const serial = uniqueSerial();
  unreachable.add(serial);
  const t = Date.now();
  const sent = [
    heartbeat(serial, { timestamp: t }),
    heartbeat(serial, { timestamp: t + 1, components: { GPS: 'OK', CAMERAS: 'CRITICAL_FAULT', LTE_ROUTERS: 'OK' } }),
    heartbeat(serial, { timestamp: t + 2 }),
  ];
  // QoS 1: each publish resolves on the PUBACK, which no longer waits for Temporal.
  for (const hb of sent) await publish(robot, `robot/${serial}/status`, hb);

  await eventually(async () => {
    const row = await fleet.prisma.device.findUnique({ where: { serialNumber: serial } });
    expect(row?.lastHeartbeatAt?.getTime()).toBe(t + 2);
  });
  expect(await inboxTimestamps(serial)).toEqual([t, t + 1, t + 2]);
  await eventually(async () => expect(attempts.get(serial)).toBeGreaterThan(1));
  await expect(fleet.temporal.workflow.getHandle(workflowIds.robot(serial)).describe()).rejects.toThrow();

  unreachable.delete(serial);
  await eventually(async () => expect(await inboxTimestamps(serial)).toEqual([]));
  const state = await fleet.temporal.workflow.getHandle(workflowIds.robot(serial)).query(robotStateQuery);
  expect(state.lastHeartbeatAt).toBe(t + 2);
  const health = await eventually(async () => {
    const list = await fleet.prisma.domainEvent.findMany({ where: { serial, type: { startsWith: 'Device.Health' } }, orderBy: { seq: 'asc' } });
    expect(list).toHaveLength(2);
    return list;
  });
  // Applied in the order received: the fault, then its recovery.
  expect(health.map((e) => e.type)).toEqual(['Device.HealthDegraded', 'Device.HealthRestored']);
});

test('one unreachable robot holds up no other robot', async () => {
  const stuck = uniqueSerial();
  const other = uniqueSerial();
  unreachable.add(stuck);
  await publish(robot, `robot/${stuck}/status`, heartbeat(stuck));
  await publish(robot, `robot/${other}/status`, heartbeat(other));
  await eventually(async () => {
    const state = await fleet.temporal.workflow.getHandle(workflowIds.robot(other)).query(robotStateQuery);
    expect(state.online).toBe(true);
  });
  expect(await inboxTimestamps(other)).toEqual([]);
  expect(await inboxTimestamps(stuck)).toHaveLength(1);
  unreachable.delete(stuck);
  await eventually(async () => expect(await inboxTimestamps(stuck)).toEqual([]));
});
