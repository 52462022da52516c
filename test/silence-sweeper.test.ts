import { temporal as proto } from '@temporalio/proto';
import { WorkflowNotFoundError } from '@temporalio/client';
import type { MqttClient } from 'mqtt';
import pino from 'pino';
import { findSilentRobots } from '../store/devices';
import { nudgeSilentRobot } from '../clients/robots';
import type { SilentRobot } from '../domain/silence';
import { SilenceSweeper, type NudgeResult } from '../ingest/silence-sweeper';
import { workflowIds } from '../temporal.config';
import { eventually, startFleet, uniqueSerial, type TestFleet } from './support/fleet';
import { connectRobot, heartbeat, publish } from './support/robot';

/**
 * Offline detection by the ingest's silence sweeper: the robot workflow keeps only a far-off
 * backstop timer, and a robot gone quiet is found in the projection and its workflow told.
 */

let fleet: TestFleet;
let robot: MqttClient;

beforeAll(async () => {
  fleet = await startFleet({ OFFLINE_AFTER_SECONDS: '3', SILENCE_SWEEP_SECONDS: '1' });
  robot = await connectRobot();
});

afterAll(async () => {
  await robot?.endAsync();
  await fleet?.stop();
});

const connectivity = async (serial: string) =>
  (await fleet.prisma.domainEvent.findMany({ where: { serial, type: 'Device.ConnectivityChanged' }, orderBy: { seq: 'asc' } })).map((e) => (e.data as { online: boolean }).online);

test('a robot that goes quiet is taken offline on the sweeper’s signal, not by a timer', async () => {
  const serial = uniqueSerial();
  for (let i = 0; i < 4; i++) {
    await publish(robot, `robot/${serial}/status`, heartbeat(serial));
    await new Promise((r) => setTimeout(r, 500));
  }
  await eventually(async () => expect(await connectivity(serial)).toEqual([true]));
  // Well before the workflow's own backstop timer, 10 minutes past the offline timeout.
  await eventually(async () => expect(await connectivity(serial)).toEqual([true, false]));

  const history = await fleet.temporal.workflow.getHandle(workflowIds.robot(serial)).fetchHistory();
  const types = history.events!.map((e) => e.eventType);
  const signals = history.events!.flatMap((e) => (e.workflowExecutionSignaledEventAttributes ? [e.workflowExecutionSignaledEventAttributes.signalName] : []));
  expect(signals).toContain('silence');
  expect(types).not.toContain(proto.api.enums.v1.EventType.EVENT_TYPE_TIMER_FIRED);
});

test('a device online in the projection with no robot workflow is nudged once and no workflow is started', async () => {
  const serial = uniqueSerial('NOWF');
  await fleet.prisma.device.create({ data: { serialNumber: serial, online: true, lastSeenAt: new Date(Date.now() - 5_000) } });
  let clock = Date.now();
  let found = 0;
  const results: NudgeResult[] = [];
  const nudge = (robot: SilentRobot) => nudgeSilentRobot(fleet.temporal, robot);
  const sweeper = new SilenceSweeper({
    findSilent: async (silentSince, heardSince) => {
      found += 1;
      return (await findSilentRobots(fleet.prisma, silentSince, heardSince)).filter((r) => r.serial === serial);
    },
    nudgeRobot: async (r) => {
      const result = await nudge(r);
      results.push(result);
      return result;
    },
    offlineAfterMs: 3_000,
    everyMs: 3_600_000,
    now: () => clock,
    logger: pino({ level: 'silent' }),
  });
  sweeper.start();
  try {
    await sweeper.sweep();
    expect(found).toBe(0); // it has not listened for the offline timeout yet
    clock += 3_000;
    await sweeper.sweep();
    await sweeper.sweep();
    expect(found).toBe(2);
    expect(results).toEqual(['no-workflow']);
    await expect(fleet.temporal.workflow.getHandle(workflowIds.robot(serial)).describe()).rejects.toBeInstanceOf(WorkflowNotFoundError);
  } finally {
    await sweeper.stop();
  }
});

test('after a batch it could not store, the sweeper waits a full offline timeout before silence counts again', async () => {
  let clock = Date.now();
  let found = 0;
  const sweeper = new SilenceSweeper({
    findSilent: async () => {
      found += 1;
      return [];
    },
    nudgeRobot: async () => 'nudged',
    offlineAfterMs: 3_000,
    everyMs: 3_600_000,
    now: () => clock,
    logger: pino({ level: 'silent' }),
  });
  sweeper.start();
  try {
    clock += 3_000;
    await sweeper.sweep();
    expect(found).toBe(1);
    clock += 1_000;
    sweeper.notHeard();
    clock += 2_999;
    await sweeper.sweep();
    expect(found).toBe(1);
    clock += 1;
    await sweeper.sweep();
    expect(found).toBe(2);
  } finally {
    await sweeper.stop();
  }
});
