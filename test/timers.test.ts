import { eventually, uniqueSerial } from './support/fleet';
import { events, inMinutes, lidCycles, simulatedRobot } from './support/lid';
import { startTimeSkippingFleet, type TimeSkippingFleet } from './support/time-skipping';

/**
 * The workflows' long timers at their real lengths, on Temporal's time-skipping test server: a lid
 * left open for the default five minutes, a command that expires after ten, a canary soaked for an
 * hour, a rollout's two-hour deadline. Each test has a server of its own. The same flows run in
 * real time with short settings in lid-timeout, commands and deployments.
 */

let fleet: TimeSkippingFleet | undefined;

afterEach(async () => {
  await fleet?.stop();
  fleet = undefined;
});

/** Lets workflow time pass a step at a time until the check holds (polls and retries need a little real time too). */
async function skipUntil<T>(f: TimeSkippingFleet, step: string, check: () => Promise<T>): Promise<T> {
  return eventually(async () => {
    await f.skip(step);
    return check();
  });
}

const account = '000000000000';
const thingArn = (serial: string) => `arn:aws:iot:us-east-1:${account}:thing/${serial}`;
const nav = { 'com.coco.Navigation': { componentVersion: '1.2.0' } };

/**
 * Robots known to the projection as online, in a thing group of their own. Their rows are written
 * directly: a robot workflow would see skipped hours as silence and mark them offline mid-soak.
 */
async function onlineRobotsInGroup(f: TimeSkippingFleet, count: number): Promise<{ serials: string[]; groupArn: string }> {
  const serials = Array.from({ length: count }, () => uniqueSerial('TS')).sort();
  await f.prisma.device.createMany({ data: serials.map((serialNumber) => ({ serialNumber, online: true, lastSeenAt: new Date() })) });
  const name = `group-${serials[0]}`;
  await f.greengrass.control({ action: 'setThingGroup', name, thingNames: serials });
  return { serials, groupArn: `arn:aws:iot:us-east-1:${account}:thinggroup/${name}` };
}

test('a lid left open for the default five minutes times out, not a minute sooner', async () => {
  fleet = await startTimeSkippingFleet();
  const f = fleet;
  const r = await simulatedRobot(f);
  try {
    expect((await f.request('PUT', `/v1/devices/${r.serial}/unlock-pin`, { pin: '2718', pinType: 'CUSTOMER', contextId: 'order-5', expiresAt: inMinutes(60) })).status).toBe(200);
    r.sim.enterPin(r.serial, '2718');
    await r.publish();
    await eventually(() => expect(r.robot().unlocked).toBe(true));
    await r.sim.moveLid(r.serial, true);
    const [cycle] = await eventually(async () => {
      const cycles = await lidCycles(f, r.serial);
      expect(cycles.map((c) => c.status)).toEqual(['INIT']);
      return cycles;
    });

    await f.skip('4 minutes');
    expect((await f.api(`/v1/lid-cycles/${cycle.cycleId}`)).body.status).toBe('INIT');
    const timedOut = await skipUntil(f, '30 seconds', async () => {
      const res = await f.api(`/v1/lid-cycles/${cycle.cycleId}`);
      expect(res.body.status).toBe('TIMEOUT');
      return res.body;
    });
    expect(timedOut).toMatchObject({ contextId: 'order-5', timeoutSeconds: 300, endedAt: null });
    const [timeout] = await events(f, r.serial, 'LidCycle.Timeout');
    expect(timeout.data).toMatchObject({ cycleId: cycle.cycleId, timeoutSeconds: 300 });
  } finally {
    await r.stop();
  }
});

test('a command nobody acknowledges is SENT for its ten minutes, then TIMEOUT', async () => {
  fleet = await startTimeSkippingFleet();
  const f = fleet;
  const r = await simulatedRobot(f);
  try {
    r.sim.setCommandReply(r.serial, 'ignore');
    const sent = await f.request('POST', `/v1/devices/${r.serial}/commands`, { commandType: 'HONK', timeoutSeconds: 600 });
    expect(sent.status).toBe(202);
    const status = async () => (await f.api(`/v1/devices/${r.serial}/commands/${sent.body.commandId}`)).body.status;
    await eventually(async () => expect(await status()).toBe('SENT'));
    await f.skip('9 minutes');
    expect(await status()).toBe('SENT');
    await skipUntil(f, '30 seconds', async () => expect(await status()).toBe('TIMEOUT'));
  } finally {
    await r.stop();
  }
});

test('a canary soaks for its hour before the rest get the rollout, which then succeeds', async () => {
  fleet = await startTimeSkippingFleet();
  const f = fleet;
  const { serials, groupArn } = await onlineRobotsInGroup(f, 2);
  const res = await f.request('POST', '/v1/deployments', { targetArn: groupArn, components: nav, rollout: { canaryDevices: 1, soakSeconds: 3600 } });
  expect(res.status).toBe(201);
  const { deploymentId } = res.body;
  const deployment = async () => (await f.api(`/v1/deployments/${deploymentId}`)).body;
  const inGreengrass = () => f.greengrass.deployments().filter((d) => d.tags['fleet-deployment-id'] === deploymentId);
  await skipUntil(f, '1 second', async () => expect((await deployment()).phase).toBe('SOAK'));

  await f.skip('50 minutes');
  expect((await deployment()).phase).toBe('SOAK');
  expect(inGreengrass().map((d) => d.targetArn)).toEqual([thingArn(serials[0])]);

  const done = await skipUntil(f, '5 minutes', async () => {
    const view = await deployment();
    expect(view.status).toBe('SUCCEEDED');
    return view;
  });
  expect(done.devices.map((d: { stage: string; status: string }) => [d.stage, d.status])).toEqual([
    ['CANARY', 'SUCCEEDED'],
    ['ROLLOUT', 'SUCCEEDED'],
  ]);
  expect(inGreengrass().map((d) => d.targetArn)).toEqual([thingArn(serials[0]), groupArn]);
});

// Two hours, not days: a stalled device is polled every 10 s of workflow time, each poll real work.
test('a rollout still unfinished after its two-hour deadline fails and is cancelled in Greengrass', async () => {
  fleet = await startTimeSkippingFleet();
  const f = fleet;
  const { serials } = await onlineRobotsInGroup(f, 1);
  await f.greengrass.control({ action: 'stallDevice', thingName: serials[0] });
  const res = await f.request('POST', '/v1/deployments', { targetArn: thingArn(serials[0]), components: nav, rollout: { deadlineSeconds: 7200 } });
  const deployment = async () => (await f.api(`/v1/deployments/${res.body.deploymentId}`)).body;
  await f.skip('1 hour');
  expect((await deployment()).status).toBe('IN_PROGRESS');
  const done = await skipUntil(f, '15 minutes', async () => {
    const view = await deployment();
    expect(view.status).toBe('FAILED');
    return view;
  });
  expect(done.reason).toBe('deadline of 7200 s passed before the rollout finished');
  expect(done.devices[0].status).toBe('CANCELLED');
});
