import type { MqttClient } from 'mqtt';
import { heartbeatRules } from '../config';
import { storeHeartbeats } from '../store/devices';
import { eventually, startFleet, uniqueSerial, type TestFleet } from './support/fleet';
import { connectRobot, heartbeat, ingestedHeartbeat, publish } from './support/robot';
import { serveApi } from './support/second-api';
import { SseClient } from './support/sse';

/**
 * GET /v1/device-updates/stream against the real stack: heartbeats through the broker and the
 * ingest worker reach SSE clients as `{ device, updatedFields }`, through each API process's one
 * listening connection; a client that stops reading skips to each robot's newest state.
 */

type Update = { device: { name: string; location: { latitude: number } | null; batteries: { chargePercent: number }[]; [field: string]: unknown }; updatedFields: string[] };

let fleet: TestFleet;
let robot: MqttClient;

beforeAll(async () => {
  // Heartbeat comments every 200 ms, so a test can see them.
  fleet = await startFleet({ EVENTS_STREAM_HEARTBEAT_SECONDS: '0.2' });
  robot = await connectRobot();
});

afterAll(async () => {
  await robot?.endAsync();
  await fleet?.stop();
});

const streams: SseClient<Update>[] = [];
const open = async (query = '', base = fleet.url) => {
  const client = await SseClient.open<Update>(`${base}/v1/device-updates/stream${query}`, fleet.keys.read);
  streams.push(client);
  expect(client.response.statusCode).toBe(200);
  return client;
};
afterEach(() => {
  for (const s of streams.splice(0)) s.close();
});

const of = (client: SseClient<Update>, serial: string) => client.messages.filter((m) => m.data.device.name === `devices/${serial}`).map((m) => m.data);

/** Waits until the client has `count` updates of the robot, and returns them. */
const updates = (client: SseClient<Update>, serial: string, count: number) =>
  eventually(() => {
    expect(of(client, serial)).toHaveLength(count);
    return of(client, serial);
  });

test('a client following two robots gets their updates, the Device as GET shows it and the fields changed, and nobody else\'s', async () => {
  const [a, b, other] = [uniqueSerial('DU'), uniqueSerial('DU'), uniqueSerial('DU')];
  const client = await open(`?serials=${a},${b}`);
  const t = Date.now();
  await publish(robot, `robot/${a}/status`, heartbeat(a, { timestamp: t, gps: { lat: 1.5, lng: 2.5 } }));
  await publish(robot, `robot/${other}/status`, heartbeat(other, { timestamp: t }));
  await publish(robot, `robot/${b}/status`, heartbeat(b, { timestamp: t }));
  const [first] = await updates(client, a, 1);
  await updates(client, b, 1);
  expect(first.updatedFields).toEqual(['location', 'batteries', 'connectivity', 'lidState', 'componentStatuses']);
  // As GET shows it; online (and updatedAt with it) is the robot workflow's to change meanwhile.
  const shown = (await fleet.api(`/v1/devices/${a}`)).body;
  for (const field of ['name', 'location', 'batteries', 'lidState', 'componentStatuses', 'driveuStatus', 'greengrassStatus', 'createdAt']) expect([field, first.device[field]]).toEqual([field, shown[field]]);

  // Moved, nothing else: only the location changed.
  await publish(robot, `robot/${a}/status`, heartbeat(a, { timestamp: t + 1000, gps: { lat: 1.6, lng: 2.5 } }));
  const [, second] = await updates(client, a, 2);
  expect(second.updatedFields).toEqual(['location']);
  expect(second.device.location?.latitude).toBe(1.6);
  // The other robot's heartbeat was stored, and never sent here.
  await eventually(async () => expect((await fleet.api(`/v1/devices/${other}`)).status).toBe(200));
  expect(of(client, other)).toEqual([]);
});

test('a repeated, an older or an unchanged heartbeat sends nothing', async () => {
  const serial = uniqueSerial('DU');
  const client = await open(`?serials=${serial}`);
  const t = Date.now();
  await publish(robot, `robot/${serial}/status`, heartbeat(serial, { timestamp: t }));
  await updates(client, serial, 1);
  await publish(robot, `robot/${serial}/status`, heartbeat(serial, { timestamp: t }));
  await publish(robot, `robot/${serial}/status`, heartbeat(serial, { timestamp: t - 500, gps: { lat: 9, lng: 9 } }));
  await publish(robot, `robot/${serial}/status`, heartbeat(serial, { timestamp: t + 1000 }));
  // A later change shows the ones before it were taken, and sent nothing.
  await publish(robot, `robot/${serial}/status`, heartbeat(serial, { timestamp: t + 2000, lid: { is_open: true } }));
  const [, changed] = await updates(client, serial, 2);
  expect(changed.updatedFields).toEqual(['lidState']);
});

test('without serials the stream follows the whole fleet', async () => {
  const client = await open();
  const serials = [uniqueSerial('DF'), uniqueSerial('DF'), uniqueSerial('DF')];
  for (const serial of serials) await publish(robot, `robot/${serial}/status`, heartbeat(serial));
  for (const serial of serials) await updates(client, serial, 1);
});

test('two API processes on one database each serve their own client, and both get the update', async () => {
  const second = await serveApi(fleet, { EVENTS_STREAM_HEARTBEAT_SECONDS: '0.2' });
  try {
    const serial = uniqueSerial('D2');
    const here = await open(`?serials=${serial}`);
    const there = await open(`?serials=${serial}`, second.url);
    await publish(robot, `robot/${serial}/status`, heartbeat(serial));
    const [mine] = await updates(here, serial, 1);
    const [theirs] = await updates(there, serial, 1);
    expect(theirs).toEqual(mine);
  } finally {
    for (const s of streams.splice(0)) s.close();
    await second.close();
  }
});

const listenerConnections = async () =>
  Number(
    (await fleet.prisma.$queryRaw<{ n: bigint }[]>`SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = 'fleet-api-listener' AND datname = current_database()`)[0].n,
  );

test('device updates and events share the API process\'s one listening connection, and updates go on when it is cut', async () => {
  const serial = uniqueSerial('DL');
  const client = await open(`?serials=${serial}`);
  const events = await SseClient.open(`${fleet.url}/v1/events/stream?serial=${serial}`, fleet.keys.read);
  try {
    await publish(robot, `robot/${serial}/status`, heartbeat(serial, { timestamp: Date.now() }));
    await updates(client, serial, 1);
    await eventually(() => expect(events.messages.length).toBeGreaterThan(0));
    expect(await listenerConnections()).toBe(1);

    await fleet.prisma.$queryRaw`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'fleet-api-listener' AND datname = current_database()`;
    await publish(robot, `robot/${serial}/status`, heartbeat(serial, { timestamp: Date.now() + 1000, gps: { lat: 2, lng: 2 } }));
    await updates(client, serial, 2);
    await eventually(async () => expect(await listenerConnections()).toBe(1));
    await publish(robot, `robot/${serial}/status`, heartbeat(serial, { timestamp: Date.now() + 2000, gps: { lat: 3, lng: 3 } }));
    const [, , third] = await updates(client, serial, 3);
    expect(third.device.location?.latitude).toBe(3);
    expect(client.ended).toBe(false);
  } finally {
    events.close();
  }
});

test('a client that stops reading skips to each robot\'s newest state, holding one entry per robot it follows', async () => {
  const serials = Array.from({ length: 5 }, () => uniqueSerial('DS'));
  const slow = await open(`?serials=${serials.join(',')}`);
  slow.pause();
  await eventually(() => expect(fleet.deviceUpdates.clients).toBe(1));
  // 64 long-named components make each Device about 6 kB: enough batches fill the socket's buffers.
  const components = Object.fromEntries(Array.from({ length: 64 }, (_, i) => [`COMPONENT_${i}_${'X'.repeat(40)}`, 'OK' as const]));
  const rules = heartbeatRules(fleet.config);
  const t = Date.now();
  let batches = 0;
  for (; batches < 2000 && fleet.deviceUpdates.behind === 0; batches++) {
    const charge = batches % 100;
    await storeHeartbeats(fleet.prisma, serials.map((s) => ingestedHeartbeat(s, { timestamp: t + batches, batteries: [{ index: 0, charge_percent: charge }], components })), rules, { inbox: false });
  }
  expect(fleet.deviceUpdates.behind).toBeGreaterThan(0);
  // Many more batches while it is behind: still at most one entry per robot.
  for (let i = 0; i < 50; i++, batches++) {
    await storeHeartbeats(fleet.prisma, serials.map((s) => ingestedHeartbeat(s, { timestamp: t + batches, batteries: [{ index: 0, charge_percent: i % 2 }], gps: { lat: i / 100, lng: 0 }, components })), rules, { inbox: false });
    expect(fleet.deviceUpdates.behind).toBeLessThanOrEqual(serials.length);
  }
  // The last change: a lid, so the newest state is easy to tell.
  await storeHeartbeats(fleet.prisma, serials.map((s) => ingestedHeartbeat(s, { timestamp: t + batches, gps: { lat: 49 / 100, lng: 0 }, lid: { is_open: true }, components })), rules, { inbox: false });

  slow.resume();
  for (const serial of serials) {
    const newest = (await fleet.api(`/v1/devices/${serial}`)).body;
    await eventually(() => expect(of(slow, serial).at(-1)?.device).toEqual(newest));
    // Caught up in one message that lists what changed since the last one it got: the lid among them.
    expect(of(slow, serial).at(-1)?.updatedFields).toContain('lidState');
  }
  expect(slow.messages.length).toBeLessThan(batches * serials.length);
  expect(slow.ended).toBe(false);
}, 120_000);

test('an idle stream gets comment lines, so proxies keep it open', async () => {
  const client = await open(`?serials=${uniqueSerial('IDLE')}`);
  await eventually(() => expect(client.comments.filter((c) => c === 'keepalive').length).toBeGreaterThanOrEqual(2));
  expect(client.messages).toEqual([]);
});

test('serials that are not serials, or more than 1,000, are a 400 naming serials', async () => {
  const many = Array.from({ length: 1001 }, (_, i) => `S${i}`).join(',');
  for (const query of ['serials=', 'serials=A,,B', 'serials=A%20B', `serials=${many}`, 'serials=A&serials=B']) {
    const res = await fetch(`${fleet.url}/v1/device-updates/stream?${query}`, { headers: { 'x-api-key': fleet.keys.read } });
    const body = (await res.json()) as { error: { message: string } };
    expect([query.slice(0, 30), res.status, body.error.message]).toEqual([query.slice(0, 30), 400, expect.stringMatching(/^serials: /)]);
  }
});
