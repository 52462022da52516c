import type { MqttClient } from 'mqtt';
import { Client } from 'pg';
import { eventually, required, startFleet, uniqueSerial, type TestFleet } from './support/fleet';
import { connectRobot, heartbeat, publish } from './support/robot';

/**
 * Greengrass rollouts end to end: the API starts a deployment workflow, whose activities call the
 * real AWS SDK against the local Greengrass V2 service (test/support/fleet.ts), which moves device
 * executions on by itself and fails, stalls or throttles when told to.
 */

let fleet: TestFleet;
let robot: MqttClient;

beforeAll(async () => {
  fleet = await startFleet();
  robot = await connectRobot();
});

afterAll(async () => {
  await robot?.endAsync();
  await fleet?.stop();
});

const account = '000000000000';
const region = 'us-east-1';
const thingArn = (serial: string) => `arn:aws:iot:${region}:${account}:thing/${serial}`;
const nav = { 'com.coco.Navigation': { componentVersion: '1.2.0' } };

/** Robots that sent a heartbeat (so they are online and core devices), in a thing group of their own. */
async function robotsInGroup(count: number): Promise<{ serials: string[]; groupArn: string }> {
  const serials = Array.from({ length: count }, () => uniqueSerial('GG')).sort();
  for (const serial of serials) await publish(robot, `robot/${serial}/status`, heartbeat(serial));
  await eventually(async () => {
    const online = await fleet.prisma.device.count({ where: { serialNumber: { in: serials }, online: true } });
    expect(online).toBe(count);
  });
  const name = `group-${serials[0]}`;
  await fleet.greengrass.control({ action: 'setThingGroup', name, thingNames: serials });
  return { serials, groupArn: `arn:aws:iot:${region}:${account}:thinggroup/${name}` };
}

const start = (body: object, key?: string) => fleet.request('POST', '/v1/deployments', body, key);

async function settled(deploymentId: string, status: string, timeoutMs = 40_000) {
  return eventually(async () => {
    const res = await fleet.api(`/v1/deployments/${deploymentId}`);
    expect(res.status).toBe(200);
    expect(res.body.status).toBe(status);
    return res.body;
  }, timeoutMs, 250);
}

/** The Greengrass deployments the local service holds for one rollout, oldest first. */
const greengrassDeploymentsOf = (deploymentId: string) =>
  fleet.greengrass.deployments().filter((d) => d.tags['fleet-deployment-id'] === deploymentId);

async function eventsOf(deploymentId: string) {
  const rows = await fleet.prisma.domainEvent.findMany({ where: { type: { startsWith: 'Rollout.' } }, orderBy: { seq: 'asc' } });
  return rows.filter((e) => (e.data as { deploymentId?: string }).deploymentId === deploymentId);
}

test('a rollout to a thing group deploys to the canary, soaks it, then deploys to the rest and succeeds', async () => {
  const { serials, groupArn } = await robotsInGroup(3);
  const res = await start({ targetArn: groupArn, components: nav, rollout: { canaryDevices: 1, soakSeconds: 1 } });
  expect(res.status).toBe(201);
  expect(res.body).toEqual({ deploymentId: expect.any(String), status: 'PENDING' });
  const { deploymentId } = res.body;

  const done = await settled(deploymentId, 'SUCCEEDED');
  expect(done.devices).toEqual([
    expect.objectContaining({ serial: serials[0], stage: 'CANARY', status: 'SUCCEEDED', greengrassStatus: 'SUCCEEDED' }),
    expect.objectContaining({ serial: serials[1], stage: 'ROLLOUT', status: 'SUCCEEDED' }),
    expect.objectContaining({ serial: serials[2], stage: 'ROLLOUT', status: 'SUCCEEDED' }),
  ]);
  expect(done).toMatchObject({ phase: 'DONE', reason: null, failurePercent: 0, deviceCounts: { total: 3, SUCCEEDED: 3 } });
  expect(done.completedAt).toEqual(expect.any(String));

  // In Greengrass: first the canary's own deployment, then one to the group.
  const inGreengrass = greengrassDeploymentsOf(deploymentId);
  expect(inGreengrass.map((d) => d.targetArn)).toEqual([thingArn(serials[0]), groupArn]);
  expect(done.greengrassDeployments.map((g: { greengrassDeploymentId: string }) => g.greengrassDeploymentId)).toEqual(inGreengrass.map((d) => d.deploymentId));
  expect(inGreengrass[1].createdAt).toBeGreaterThan(inGreengrass[0].executions[serials[0]].modifiedAt);

  const events = await eventsOf(deploymentId);
  expect(events.map((e) => e.type)).toEqual(['Rollout.Started', 'Rollout.StageCompleted', 'Rollout.StageCompleted', 'Rollout.Succeeded']);
  expect(events[1].data).toMatchObject({ stage: 'CANARY', devices: 1, succeeded: 1 });
  expect(events[2].data).toMatchObject({ stage: 'ROLLOUT', devices: 2, succeeded: 2 });
  const viaApi = await fleet.api('/v1/events?type=Rollout.Succeeded&limit=1000');
  expect(viaApi.body.events.map((e: { id: string }) => e.id)).toContain(events[3].id);

  const list = await fleet.api('/v1/deployments?status=SUCCEEDED&pageSize=200');
  const listed = list.body.deployments.find((d: { deploymentId: string }) => d.deploymentId === deploymentId);
  expect(listed).toMatchObject({ status: 'SUCCEEDED', targetArn: groupArn, deviceCounts: { total: 3 } });
  expect(listed.devices).toBeUndefined();

  const software = await fleet.api(`/v1/devices/${serials[2]}/software?fresh=true`);
  expect(software.body.installedComponents).toContainEqual(expect.objectContaining({ componentName: 'com.coco.Navigation', componentVersion: '1.2.0', lifecycleState: 'RUNNING' }));
});

test('a failing canary stops the rollout before the rest receive it', async () => {
  const { serials, groupArn } = await robotsInGroup(3);
  await fleet.greengrass.control({ action: 'failDevice', thingName: serials[0], reason: 'com.coco.Navigation exited with code 1' });
  const { body } = await start({ targetArn: groupArn, components: nav, rollout: { canaryDevices: 1, soakSeconds: 1 } });

  const done = await settled(body.deploymentId, 'FAILED');
  expect(done.reason).toContain(`canary ${serials[0]} failed`);
  expect(done.reason).toContain('com.coco.Navigation exited with code 1');
  expect(done.devices.map((d: { status: string }) => d.status)).toEqual(['FAILED', 'SKIPPED', 'SKIPPED']);
  expect(greengrassDeploymentsOf(body.deploymentId).map((d) => d.targetArn)).toEqual([thingArn(serials[0])]);
  const events = await eventsOf(body.deploymentId);
  expect(events.map((e) => e.type)).toEqual(['Rollout.Started', 'Rollout.Failed']);
  expect(events[1].data).toMatchObject({ reason: done.reason });
});

test('a canary that reports a critical fault during the soak stops the rollout', async () => {
  const { serials, groupArn } = await robotsInGroup(2);
  const { body } = await start({ targetArn: groupArn, components: nav, rollout: { canaryDevices: 1, soakSeconds: 30 } });
  await eventually(async () => expect((await fleet.api(`/v1/deployments/${body.deploymentId}`)).body.phase).toBe('SOAK'), 60_000, 200);
  await publish(robot, `robot/${serials[0]}/status`, heartbeat(serials[0], { components: { GPS: 'CRITICAL_FAULT', CAMERAS: 'OK', LTE_ROUTERS: 'OK' } }));

  const done = await settled(body.deploymentId, 'FAILED');
  expect(done.reason).toContain('robot reports CRITICAL_FAULT on GPS');
  expect(done.devices.map((d: { status: string }) => d.status)).toEqual(['FAILED', 'SKIPPED']);
  expect(greengrassDeploymentsOf(body.deploymentId)).toHaveLength(1);
});

test('cancelling mid-rollout cancels the deployment in Greengrass', async () => {
  const { serials, groupArn } = await robotsInGroup(2);
  for (const thingName of serials) await fleet.greengrass.control({ action: 'stallDevice', thingName });
  const { body } = await start({ targetArn: groupArn, components: nav });
  const running = await eventually(async () => {
    const view = (await fleet.api(`/v1/deployments/${body.deploymentId}`)).body;
    expect(view.devices.map((d: { status: string }) => d.status)).toEqual(['QUEUED', 'QUEUED']);
    return view;
  });
  expect(running.status).toBe('IN_PROGRESS');

  const cancel = await fleet.request('POST', `/v1/deployments/${body.deploymentId}/cancel`, { reason: 'wrong build' });
  expect(cancel.status).toBe(202);
  expect(cancel.body).toMatchObject({ deploymentId: body.deploymentId, cancelRequested: true });

  const done = await settled(body.deploymentId, 'CANCELLED');
  expect(done.reason).toBe('wrong build');
  expect(done.devices.map((d: { status: string }) => d.status)).toEqual(['CANCELLED', 'CANCELLED']);
  const [inGreengrass] = greengrassDeploymentsOf(body.deploymentId);
  expect(inGreengrass.status).toBe('CANCELED');
  expect(done.greengrassDeployments[0].status).toBe('CANCELED');
  expect((await eventsOf(body.deploymentId)).map((e) => e.type)).toEqual(['Rollout.Started', 'Rollout.Cancelled']);

  const again = await fleet.request('POST', `/v1/deployments/${body.deploymentId}/cancel`, {});
  expect(again.status).toBe(409);
  for (const thingName of serials) await fleet.greengrass.control({ action: 'recoverDevice', thingName });
});

test('a rollout shows its end only once the end and its event are stored', async () => {
  const { serials, groupArn } = await robotsInGroup(1);
  await fleet.greengrass.control({ action: 'stallDevice', thingName: serials[0] });
  const { body } = await start({ targetArn: groupArn, components: nav });
  await eventually(async () => expect((await fleet.api(`/v1/deployments/${body.deploymentId}`)).body.devices[0]?.status).toBe('QUEUED'));

  // Hold the rollout's row, so that the workflow's last write waits on the lock.
  const holder = new Client({ connectionString: required('DATABASE_URL') });
  await holder.connect();
  try {
    await holder.query('BEGIN');
    await holder.query('SELECT 1 FROM software_deployments WHERE deployment_id = $1 FOR UPDATE', [body.deploymentId]);
    await fleet.request('POST', `/v1/deployments/${body.deploymentId}/cancel`, { reason: 'held' });
    await eventually(async () => {
      // Only a writer of the held row can be blocked by this session.
      const waiting = await holder.query('SELECT count(*)::int AS n FROM pg_stat_activity WHERE pg_backend_pid() = ANY(pg_blocking_pids(pid))');
      expect(waiting.rows[0].n).toBeGreaterThan(0);
    });
    const meanwhile = (await fleet.api(`/v1/deployments/${body.deploymentId}`)).body;
    expect(meanwhile.status).toBe('IN_PROGRESS');
    expect(meanwhile.cancelRequested).toBe(true);
  } finally {
    await holder.query('COMMIT');
    await holder.end();
  }
  await settled(body.deploymentId, 'CANCELLED');
  expect((await eventsOf(body.deploymentId)).map((e) => e.type)).toEqual(['Rollout.Started', 'Rollout.Cancelled']);
  await fleet.greengrass.control({ action: 'recoverDevice', thingName: serials[0] });
});

test('cancelling the workflow from Temporal also cancels in Greengrass', async () => {
  const { serials, groupArn } = await robotsInGroup(1);
  await fleet.greengrass.control({ action: 'stallDevice', thingName: serials[0] });
  const { body } = await start({ targetArn: groupArn, components: nav });
  await eventually(async () => expect((await fleet.api(`/v1/deployments/${body.deploymentId}`)).body.devices[0]?.status).toBe('QUEUED'));
  await fleet.temporal.workflow.getHandle(`deployment:${body.deploymentId}`).cancel();

  const done = await settled(body.deploymentId, 'CANCELLED');
  expect(done.reason).toBe('the deployment workflow was cancelled');
  expect(greengrassDeploymentsOf(body.deploymentId)[0].status).toBe('CANCELED');
  await fleet.greengrass.control({ action: 'recoverDevice', thingName: serials[0] });
});

test('a rollout still unfinished at its deadline fails and is cancelled in Greengrass', async () => {
  const { serials } = await robotsInGroup(1);
  await fleet.greengrass.control({ action: 'stallDevice', thingName: serials[0] });
  const { body } = await start({ targetArn: thingArn(serials[0]), components: nav, rollout: { deadlineSeconds: 2 } });
  const done = await settled(body.deploymentId, 'FAILED');
  expect(done.reason).toBe('deadline of 2 s passed before the rollout finished');
  expect(done.devices[0].status).toBe('CANCELLED');
  expect(greengrassDeploymentsOf(body.deploymentId)[0].status).toBe('CANCELED');
  await fleet.greengrass.control({ action: 'recoverDevice', thingName: serials[0] });
});

test('a rollout survives Greengrass throttling', async () => {
  const { serials } = await robotsInGroup(1);
  await fleet.greengrass.control({ action: 'throttle', requests: 8 });
  const { body } = await start({ targetArn: thingArn(serials[0]), components: nav });
  const done = await settled(body.deploymentId, 'SUCCEEDED');
  expect(done.devices).toEqual([expect.objectContaining({ serial: serials[0], status: 'SUCCEEDED' })]);
  expect(fleet.greengrass.pendingFaults().throttle).toBe(0);
  expect(greengrassDeploymentsOf(body.deploymentId)).toHaveLength(1);
});

test('a lost CreateDeployment response is retried without creating a second Greengrass deployment', async () => {
  const { serials } = await robotsInGroup(1);
  await fleet.greengrass.control({ action: 'loseCreateResponses', requests: 1 });
  const { body } = await start({ targetArn: thingArn(serials[0]), components: nav });
  const done = await settled(body.deploymentId, 'SUCCEEDED');
  expect(fleet.greengrass.pendingFaults().loseCreateResponses).toBe(0);
  const inGreengrass = greengrassDeploymentsOf(body.deploymentId);
  expect(inGreengrass).toHaveLength(1);
  expect(done.greengrassDeployments.map((g: { greengrassDeploymentId: string }) => g.greengrassDeploymentId)).toEqual([inGreengrass[0].deploymentId]);
});

test('a worker restart mid-rollout neither loses nor duplicates the Greengrass deployment', async () => {
  const { serials, groupArn } = await robotsInGroup(2);
  // Greengrass records the deployment, then answers slowly: the worker goes down while it waits.
  await fleet.greengrass.control({ action: 'delayCreate', ms: 3000 });
  const { body } = await start({ targetArn: groupArn, components: nav });
  await eventually(() => expect(greengrassDeploymentsOf(body.deploymentId)).toHaveLength(1), 60_000, 50);
  await fleet.stopWorker();
  await fleet.greengrass.control({ action: 'delayCreate', ms: 0 });
  // While the worker is down the API still answers, from the projection.
  const meanwhile = await fleet.api(`/v1/deployments/${body.deploymentId}`);
  expect(meanwhile.status).toBe(200);
  await fleet.startWorker();

  const done = await settled(body.deploymentId, 'SUCCEEDED');
  const inGreengrass = greengrassDeploymentsOf(body.deploymentId);
  expect(inGreengrass).toHaveLength(1);
  expect(done.greengrassDeployments.map((g: { greengrassDeploymentId: string }) => g.greengrassDeploymentId)).toEqual([inGreengrass[0].deploymentId]);
  expect(done.devices.map((d: { serial: string; status: string }) => [d.serial, d.status])).toEqual(serials.map((s) => [s, 'SUCCEEDED']));
});

test('the same requestId twice starts one rollout and answers with the first', async () => {
  const { serials } = await robotsInGroup(1);
  const request = { targetArn: thingArn(serials[0]), components: nav, requestId: `req-${serials[0]}` };
  const first = await start(request);
  const second = await start({ ...request, components: { 'com.coco.Other': { componentVersion: '9.9.9' } } });
  expect(first.status).toBe(201);
  expect(second.status).toBe(200);
  expect(second.body.deploymentId).toBe(first.body.deploymentId);
  const done = await settled(first.body.deploymentId, 'SUCCEEDED');
  expect(done.requestId).toBe(request.requestId);
  expect(Object.keys(done.components)).toEqual(['com.coco.Navigation']);
  expect(greengrassDeploymentsOf(first.body.deploymentId)).toHaveLength(1);
  const third = await start(request);
  expect(third).toMatchObject({ status: 200, body: { deploymentId: first.body.deploymentId, status: 'SUCCEEDED' } });
});

test('errors from Greengrass fail the rollout with a reason the engineer can act on', async () => {
  const { serials } = await robotsInGroup(1);
  await fleet.greengrass.control({ action: 'rejectComponent', componentName: 'com.coco.Missing' });
  const rejected = await start({ targetArn: thingArn(serials[0]), components: { 'com.coco.Missing': { componentVersion: '1.0.0' } } });
  const failed = await settled(rejected.body.deploymentId, 'FAILED');
  expect(failed.reason).toMatch(/CreateDeployment failed: ValidationException: Component com.coco.Missing version 1.0.0 does not exist/);

  const unknown = await start({ targetArn: thingArn(uniqueSerial('NOPE')), components: nav });
  const notACore = await settled(unknown.body.deploymentId, 'FAILED');
  expect(notACore.reason).toMatch(/is not a Greengrass core device/);
  expect(notACore.greengrassDeployments).toEqual([]);
});

test('bad requests get a 400 naming the field', async () => {
  const valid = { targetArn: thingArn('R1'), components: nav };
  const cases: [object, string][] = [
    [{ ...valid, targetArn: 'robot-1' }, 'targetArn'],
    [{ components: nav }, 'targetArn'],
    [{ ...valid, components: {} }, 'components'],
    [{ ...valid, components: { 'com.coco.Navigation': { componentVersion: 'latest' } } }, 'components.com.coco.Navigation.componentVersion'],
    [{ ...valid, components: { 'bad name!': { componentVersion: '1.0.0' } } }, 'components["bad name!"]'],
    [{ ...valid, rollout: { maxFailurePercent: 150 } }, 'rollout.maxFailurePercent'],
    [{ ...valid, rollout: { soakSeconds: -1 } }, 'rollout.soakSeconds'],
    [{ ...valid, rollout: { canaryDevices: 'two' } }, 'rollout.canaryDevices'],
  ];
  for (const [body, field] of cases) {
    const res = await start(body);
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('INVALID_ARGUMENT');
    expect(res.body.error.message.startsWith(`${field}:`)).toBe(true);
  }
  expect((await fleet.api('/v1/deployments/not*an*id')).body.error.message).toMatch(/^id:/);
  expect((await fleet.api('/v1/deployments?pageSize=0')).body.error.message).toMatch(/^pageSize:/);
  expect((await fleet.api('/v1/deployments?pageToken=xyz')).status).toBe(400);
  expect((await fleet.api('/v1/deployments/00000000-0000-0000-0000-000000000000')).status).toBe(404);
  expect((await fleet.request('POST', '/v1/deployments/00000000-0000-0000-0000-000000000000/cancel', {})).status).toBe(404);
});

test('a read-only key cannot start or cancel a rollout, but can follow them', async () => {
  const denied = await start({ targetArn: thingArn('R1'), components: nav }, fleet.keys.read);
  expect(denied.status).toBe(403);
  expect(denied.body.error).toMatchObject({ code: 'PERMISSION_DENIED', message: expect.stringContaining('deploy') });
  expect((await fleet.request('POST', '/v1/deployments/00000000-0000-0000-0000-000000000000/cancel', {}, fleet.keys.read)).status).toBe(403);
  expect((await fleet.request('GET', '/v1/deployments', undefined, fleet.keys.read)).status).toBe(200);
});
