import { randomUUID } from 'node:crypto';
import type { MqttClient } from 'mqtt';
import { eventually, startFleet, uniqueSerial, type TestFleet } from './support/fleet';
import { connectRobot, heartbeat, publish } from './support/robot';
import { SseClient } from './support/sse';

/**
 * GET /v1/events/stream against the real stack: events recorded in PostgreSQL (by a robot
 * workflow, or written here the way activities write them) reach SSE clients through the API's
 * one LISTEN connection, and a client resumes where it left off.
 */

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

type Event = { id: string; type: string; serial: string | null; occurredAt: string; data: Record<string, unknown> };

const received = (client: SseClient<Event>) => client.messages.map((m) => m.data.id);

/** Waits until an event with this id has arrived. */
const until = (client: SseClient<Event>, eventId: string) => eventually(() => expect(received(client)).toContain(eventId));

const streams: SseClient<Event>[] = [];
const open = async (path: string, headers?: Record<string, string>) => {
  const client = await SseClient.open<Event>(`${fleet.url}${path}`, fleet.keys.read, headers);
  streams.push(client);
  return client;
};
afterEach(() => {
  for (const s of streams.splice(0)) s.close();
});

/** Records events for a robot the way the activities do: ids chosen by the caller, one transaction per call. */
async function record(serial: string, count: number, opts: { type?: string; padding?: number } = {}): Promise<string[]> {
  const ids = Array.from({ length: count }, () => `test-${randomUUID()}`);
  await fleet.prisma.domainEvent.createMany({
    data: ids.map((id, i) => ({
      id,
      type: opts.type ?? 'Device.HealthDegraded',
      serial,
      occurredAt: new Date(),
      data: { componentName: 'CAMERAS', n: i, ...(opts.padding ? { padding: 'x'.repeat(opts.padding) } : {}) },
    })),
    skipDuplicates: true,
  });
  return ids;
}

/** Every event recorded for the robot, in seq order: what a gap-free, duplicate-free stream delivers. */
async function recorded(serial: string): Promise<string[]> {
  const rows = await fleet.prisma.domainEvent.findMany({ where: { serial }, orderBy: { seq: 'asc' }, select: { id: true } });
  return rows.map((r) => r.id);
}

/** Anything the stream had yet to send arrives before a newer event: record one and wait for it. */
async function settle(client: SseClient<Event>, serial: string): Promise<void> {
  const [sentinel] = await record(serial, 1, { type: 'Test.Sentinel' });
  await until(client, sentinel);
}

test("a robot's events reach an open stream as they are recorded: id is the seq, event the type, data the event", async () => {
  const serial = uniqueSerial();
  const client = await open(`/v1/events/stream?serial=${serial}`);
  expect(client.response.statusCode).toBe(200);
  expect(client.response.headers['content-type']).toBe('text/event-stream; charset=utf-8');
  expect(client.response.headers['cache-control']).toContain('no-cache');

  await publish(robot, `robot/${serial}/status`, heartbeat(serial));
  await eventually(() => expect(client.messages.map((m) => m.event)).toContain('Device.ConnectivityChanged'));

  const page = await fleet.api(`/v1/events?serial=${serial}`);
  const message = client.messages.find((m) => m.event === 'Device.ConnectivityChanged')!;
  expect(message.data).toEqual(page.body.events[0]);
  expect(message.data).toMatchObject({ type: 'Device.ConnectivityChanged', serial, data: { online: true } });
  // The SSE id is the same cursor GET /v1/events pages with.
  expect(message.id).toBe(page.body.nextCursor);
});

test('a client that reconnects with Last-Event-ID gets every later event once, in order, including those recorded while it was away', async () => {
  const serial = uniqueSerial('SSE');
  const first = await open(`/v1/events/stream?serial=${serial}`);
  const before = [...(await record(serial, 4)), ...(await record(serial, 6))];
  await until(first, before[before.length - 1]);
  first.close();

  const away = [...(await record(serial, 7)), ...(await record(serial, 8))];
  const second = await open(`/v1/events/stream?serial=${serial}`, { 'Last-Event-ID': first.lastId });
  const during = await record(serial, 5);
  await settle(second, serial);

  const all = await recorded(serial);
  expect([...received(first), ...received(second)]).toEqual(all);
  expect(all).toEqual(expect.arrayContaining([...before, ...away, ...during]));
});

test('events written by concurrent transactions arrive in seq order with none missing', async () => {
  const serial = uniqueSerial('SSE');
  const client = await open(`/v1/events/stream?serial=${serial}`);
  await Promise.all(Array.from({ length: 20 }, () => record(serial, 5)));
  await settle(client, serial);

  expect(received(client)).toEqual(await recorded(serial));
  expect(received(client)).toHaveLength(101);
  const seqs = client.messages.map((m) => BigInt(m.id));
  expect(seqs.every((s, i) => i === 0 || s > seqs[i - 1])).toBe(true);
});

test('?after= starts after that event, ?type= filters, and Last-Event-ID wins over ?after=', async () => {
  const serial = uniqueSerial('SSE');
  const [a] = await record(serial, 1, { type: 'Device.HealthDegraded' });
  await record(serial, 1, { type: 'Device.HealthRestored' });
  const [b] = await record(serial, 1, { type: 'Device.HealthDegraded' });
  const [c] = await record(serial, 1, { type: 'Device.HealthDegraded' });
  // GET /v1/events's cursor after the first event: the seq of `a`.
  const first = await fleet.api(`/v1/events?serial=${serial}&limit=1`);
  expect(first.body.events.map((e: { id: string }) => e.id)).toEqual([a]);
  const afterA = first.body.nextCursor;

  const degraded = await open(`/v1/events/stream?serial=${serial}&type=Device.HealthDegraded&after=${afterA}`);
  await until(degraded, c);
  expect(received(degraded)).toEqual([b, c]);
  expect(degraded.messages.every((m) => m.event === 'Device.HealthDegraded')).toBe(true);

  // An EventSource reconnects with its original URL and the Last-Event-ID of what it last got.
  const bSeq = degraded.messages[0].id;
  const resumed = await open(`/v1/events/stream?serial=${serial}&type=Device.HealthDegraded&after=${afterA}`, { 'Last-Event-ID': bSeq });
  await until(resumed, c);
  expect(received(resumed)).toEqual([c]);
});

test('without a cursor the stream starts with the next event recorded', async () => {
  const serial = uniqueSerial('SSE');
  await record(serial, 3);
  const client = await open(`/v1/events/stream?serial=${serial}`);
  const later = await record(serial, 2);
  await settle(client, serial);
  expect(received(client).slice(0, 2)).toEqual(later);
  expect(received(client)).toHaveLength(3);
});

test('an idle stream gets comment lines, so proxies keep it open', async () => {
  const client = await open(`/v1/events/stream?serial=${uniqueSerial('IDLE')}`);
  await eventually(() => expect(client.comments.filter((c) => c === 'keepalive').length).toBeGreaterThanOrEqual(2));
  expect(client.messages).toEqual([]);
  expect(client.ended).toBe(false);
});

test('the stream needs a key with read scope, and a bad Last-Event-ID or after is a 400 naming it', async () => {
  const noKey = await fetch(`${fleet.url}/v1/events/stream`);
  expect(noKey.status).toBe(401);
  const badHeader = await fetch(`${fleet.url}/v1/events/stream`, { headers: { 'x-api-key': fleet.keys.read, 'Last-Event-ID': 'abc' } });
  expect(badHeader.status).toBe(400);
  expect(((await badHeader.json()) as { error: { message: string } }).error.message).toMatch(/^Last-Event-ID: /);
  const badAfter = await fetch(`${fleet.url}/v1/events/stream?after=-1`, { headers: { 'x-api-key': fleet.keys.read } });
  expect(badAfter.status).toBe(400);
  expect(((await badAfter.json()) as { error: { message: string } }).error.message).toMatch(/^after: /);
});

const feedConnections = async () =>
  Number(
    (await fleet.prisma.$queryRaw<{ n: bigint }[]>`SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = 'fleet-api-listener' AND datname = current_database()`)[0].n,
  );

test('every stream of the API shares one listening database connection', async () => {
  const serial = uniqueSerial('SSE');
  const clients = await Promise.all([1, 2, 3].map(() => open(`/v1/events/stream?serial=${serial}`)));
  const [id] = await record(serial, 1);
  for (const c of clients) await until(c, id);
  expect(await feedConnections()).toBe(1);
});

test('when the listening connection is cut, events still arrive and the listener comes back', async () => {
  const serial = uniqueSerial('SSE');
  const client = await open(`/v1/events/stream?serial=${serial}`);
  await eventually(async () => expect(await feedConnections()).toBe(1));
  await fleet.prisma.$queryRaw`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'fleet-api-listener' AND datname = current_database()`;

  const ids = await record(serial, 3);
  await until(client, ids[2]);
  await eventually(async () => expect(await feedConnections()).toBe(1));
  const more = await record(serial, 2);
  await until(client, more[1]);
  expect(received(client)).toEqual(await recorded(serial));
  expect(client.ended).toBe(false);
});

test('a client that stops reading is disconnected once its queue is full, and resumes without a gap', async () => {
  const serial = uniqueSerial('SLOW');
  const slow = await open(`/v1/events/stream?serial=${serial}`);
  slow.pause();
  await eventually(() => expect(fleet.eventStream.clients).toBe(1));
  // 8 kB events until the server gives up on the client: more than the socket buffers hold.
  for (let i = 0; i < 40 && fleet.eventStream.clients > 0; i++) await record(serial, 250, { padding: 8000 });
  await eventually(() => expect(fleet.eventStream.clients).toBe(0));
  slow.resume();
  await eventually(() => expect(slow.ended).toBe(true));

  const from: Record<string, string> = slow.messages.length ? { 'Last-Event-ID': slow.lastId } : {};
  const resumed = await open(`/v1/events/stream?serial=${serial}&after=0`, from);
  await settle(resumed, serial);
  expect(slow.messages.length).toBeLessThan((await recorded(serial)).length - 1);
  expect([...received(slow), ...received(resumed)]).toEqual(await recorded(serial));
}, 120_000);
