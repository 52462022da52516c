import { createHmac, randomUUID } from 'node:crypto';
import type { MqttClient } from 'mqtt';
import { eventually, startFleet, uniqueSerial, type TestFleet } from './support/fleet';
import { connectRobot, heartbeat, publish } from './support/robot';

const SECRET = 'driveu-test-secret';
let fleet: TestFleet;
let robot: MqttClient;

beforeAll(async () => {
  fleet = await startFleet({ DRIVEU_WEBHOOK_SECRET: SECRET, OFFLINE_AFTER_SECONDS: '30' });
  robot = await connectRobot();
});

afterAll(async () => {
  await robot?.endAsync();
  await fleet?.stop();
});

const micros = (ms: number) => ms * 1000;

/** Posts a webhook the way DriveU does: the signature is over the exact bytes sent. */
async function webhook(event: object, sign: (raw: string) => string | undefined = (raw) => `sha256=${createHmac('sha256', SECRET).update(raw).digest('hex')}`) {
  const raw = JSON.stringify(event);
  const signature = sign(raw);
  const res = await fetch(`${fleet.url}/v1/webhooks/driveu`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(signature ? { 'x-driveu-signature': signature } : {}) },
    body: raw,
  });
  return { status: res.status, body: (await res.json()) as any };
}

const status = (uuid: string, value: string, timeMs: number, unit = 'streamer') => ({ eventName: 'status', unit, status: value, uuid, vin: null, time: micros(timeMs) });

async function robotWithUnit(): Promise<{ serial: string; uuid: string }> {
  const serial = uniqueSerial('DU');
  const uuid = randomUUID();
  await publish(robot, `robot/${serial}/status`, heartbeat(serial));
  await eventually(async () => expect((await fleet.api(`/v1/fleet-devices/${serial}`)).body.device?.connectivity.online).toBe(true));
  const put = await fleet.request('PUT', `/v1/devices/${serial}/driveu-unit`, { uuid });
  expect(put.status).toBe(200);
  expect(put.body).toMatchObject({ serial, uuid });
  return { serial, uuid };
}

test('a DriveU webhook flips pilotConnected on the device and the fleet view, and back', async () => {
  const { serial, uuid } = await robotWithUnit();
  const t = Date.now();
  const connected = await webhook(status(uuid, 'connectedToNode', t));
  expect(connected).toEqual({ status: 202, body: { accepted: true, serial, applied: true } });

  const device = await eventually(async () => {
    const res = await fleet.api(`/v1/devices/${serial}`);
    expect(res.body.driveuStatus.pilotConnected).toBe(true);
    return res.body;
  });
  expect(device.driveuStatus).toMatchObject({ streamerStatus: 'DRIVEU_STREAMER_STATUS_CONNECTED_TO_NODE', sessionId: expect.stringContaining(uuid) });
  const view = (await fleet.api(`/v1/fleet-devices/${serial}`)).body;
  expect(view.activePilot).toMatchObject({ sessionId: device.driveuStatus.sessionId, sessionStartedAt: new Date(t).toISOString() });
  const filtered = await fleet.api(`/v1/fleet-devices?filter=${encodeURIComponent(`serial=${serial} AND pilotConnected=true`)}`);
  expect(filtered.body.totalSize).toBe(1);

  // An older report arriving late changes nothing; a newer one ends the session.
  await webhook(status(uuid, 'offline', t - 5_000));
  await webhook(status(uuid, 'online', t + 5_000));
  await eventually(async () => {
    const res = await fleet.api(`/v1/fleet-devices/${serial}`);
    expect(res.body.device.driveuStatus).toMatchObject({ pilotConnected: false, streamerStatus: 'DRIVEU_STREAMER_STATUS_ONLINE' });
    expect(res.body.activePilot).toBeNull();
  });
  const kept = await fleet.prisma.driveuEvent.findMany({ where: { uuid }, orderBy: { id: 'asc' } });
  expect(kept.map((e) => e.status)).toEqual(['connectedToNode', 'offline', 'online']);
});

test('a webhook with a missing or wrong signature is refused with 401 and kept nowhere', async () => {
  const { uuid } = await robotWithUnit();
  const event = status(uuid, 'streaming', Date.now());
  expect((await webhook(event, () => undefined)).status).toBe(401);
  expect((await webhook(event, (raw) => `sha256=${createHmac('sha256', 'not-the-secret').update(raw).digest('hex')}`)).status).toBe(401);
  // Signed, then changed in transit.
  expect((await webhook(event, (raw) => `sha256=${createHmac('sha256', SECRET).update(raw.replace('streaming', 'offline')).digest('hex')}`)).status).toBe(401);
  expect(await fleet.prisma.driveuEvent.count({ where: { uuid } })).toBe(0);
});

test('an event for a unit no robot claims is kept (202, serial null) and applied once the unit is registered', async () => {
  const uuid = randomUUID();
  const t = Date.now();
  const res = await webhook(status(uuid, 'streaming', t));
  expect(res).toEqual({ status: 202, body: { accepted: true, serial: null, applied: false } });
  expect(await fleet.prisma.driveuEvent.findMany({ where: { uuid } })).toEqual([expect.objectContaining({ serialNumber: null, status: 'streaming' })]);

  const serial = uniqueSerial('DU');
  await publish(robot, `robot/${serial}/status`, heartbeat(serial));
  expect((await fleet.request('PUT', `/v1/devices/${serial}/driveu-unit`, { uuid })).status).toBe(200);
  await eventually(async () => expect((await fleet.api(`/v1/devices/${serial}`)).body.driveuStatus?.pilotConnected).toBe(true));
});

test('webhook input is validated, and the unit registry needs the operate scope', async () => {
  const bad = await webhook({ eventName: 'status', unit: 'streamer', status: 'online', uuid: 'u', vin: null, time: Date.now() });
  expect(bad.status).toBe(400);
  expect(bad.body.error.message).toMatch(/^time: time is in microseconds/);
  const serial = uniqueSerial('DU');
  expect((await fleet.request('PUT', `/v1/devices/${serial}/driveu-unit`, { uuid: 'u' }, fleet.keys.read)).status).toBe(403);
  expect((await fleet.request('PUT', `/v1/devices/${serial}/driveu-unit`, {})).body.error.message).toMatch(/^uuid: /);
});
