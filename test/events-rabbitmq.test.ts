import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { connect } from 'amqplib';
import pino from 'pino';
import { createPrisma, type Prisma } from '../infra/prisma';
import { exchangeName } from '../outbox/messages';
import { startEventPublisher, type EventPublisher } from '../outbox/publisher';
import { createTestDatabase } from './support/database';
import { eventually, uniqueSerial } from './support/fleet';
import { AmqpConsumer, RABBITMQCTL, rabbitmqctl } from './support/rabbitmq';

/**
 * The outbox to a real RabbitMQ (Debian's rabbitmq-server; `.ci/run` starts it with
 * scripts/rabbitmq.sh and sets AMQP_URL). Without AMQP_URL these tests are skipped.
 * Each test records events in its own empty database and counts what a consumer's durable queue
 * receives, by message id: every event arrives, none is lost to a broker or publisher failure.
 */

const AMQP_URL = process.env.AMQP_URL;
if (!AMQP_URL) {
  console.warn('test/events-rabbitmq.test.ts: AMQP_URL is unset, so the RabbitMQ tests are skipped. Run `export AMQP_URL=$(scripts/rabbitmq.sh)` first (as CI does).');
}
const withRabbit = AMQP_URL ? describe : describe.skip;
const withLocalRabbit = AMQP_URL && RABBITMQCTL ? test : test.skip;

const silent = pino({ level: 'silent' });

withRabbit('domain events to RabbitMQ', () => {
  let database: { url: string; drop(): Promise<void> };
  let prisma: Prisma;
  const env = `test-${randomBytes(4).toString('hex')}`;
  const exchange = exchangeName(env);
  const cleanups: (() => Promise<unknown>)[] = [];

  beforeAll(async () => {
    database = await createTestDatabase('outbox');
    prisma = createPrisma(database.url);
  });

  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
  });

  afterAll(async () => {
    await prisma?.$disconnect();
    await database?.drop();
    const connection = await connect(AMQP_URL!);
    await (await connection.createChannel()).deleteExchange(exchange);
    await connection.close();
  });

  const consumer = async (patterns = ['#']) => {
    const c = await new AmqpConsumer(AMQP_URL!, `test-events-${randomUUID()}`, exchange, patterns).start();
    cleanups.push(() => c.stop());
    return c;
  };

  const publisher = (): EventPublisher => {
    const p = startEventPublisher({ databaseUrl: database.url, amqpUrl: AMQP_URL!, env, logger: silent, idlePollMs: 1000, maxRetryDelayMs: 1000 });
    cleanups.push(() => p.stop());
    return p;
  };

  /** The publisher's own entry point in a process of its own, so it can be killed outright. */
  const publisherProcess = (): ChildProcess => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(__dirname, '..', 'workers', 'event-publisher.ts')], {
      env: { ...process.env, DATABASE_URL: database.url, AMQP_URL, EVENTS_ENV: env, LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    cleanups.push(async () => {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await exited;
      }
    });
    return child;
  };

  /** Records events the way the activities do: ids chosen by the caller, one transaction per call. */
  const record = async (serial: string, count: number, types = ['Device.HealthDegraded', 'Device.HealthRestored', 'LidCycle.Started']) => {
    const ids = Array.from({ length: count }, () => `test-${randomUUID()}`);
    await prisma.domainEvent.createMany({
      data: ids.map((id, i) => ({ id, type: types[i % types.length], serial, occurredAt: new Date(), data: { n: i } })),
      skipDuplicates: true,
    });
    return ids;
  };

  /** Keeps recording small batches until stopped; resolves with every id it recorded. */
  const keepRecording = (serial: string) => {
    let stop = false;
    const done = (async () => {
      const ids: string[] = [];
      while (!stop) {
        ids.push(...(await record(serial, 5)));
        await new Promise((r) => setTimeout(r, 20));
      }
      return ids;
    })();
    return { stop: () => ((stop = true), done) };
  };

  const recorded = async (serial: string) =>
    (await prisma.domainEvent.findMany({ where: { serial }, orderBy: { seq: 'asc' }, select: { id: true } })).map((r) => r.id);
  const outboxSize = () => prisma.eventOutbox.count();

  test('each recorded event is published once, in seq order, persistent, with its id as message id and its type as routing key', async () => {
    const serial = uniqueSerial('AMQP');
    const all = await consumer();
    const restored = await consumer(['Device.HealthRestored']);
    const p = publisher();
    const ids = [...(await record(serial, 10)), ...(await record(serial, 10)), ...(await record(serial, 10))];

    await eventually(() => expect(all.distinct(serial)).toHaveLength(30));
    await eventually(async () => expect(await outboxSize()).toBe(0));
    expect(all.of(serial)).toHaveLength(30); // nothing is left to publish, and nothing came twice
    expect(all.distinct(serial)).toEqual(await recorded(serial));
    expect(new Set(ids)).toEqual(new Set(all.distinct(serial)));
    expect(p.published).toBe(30);

    const rows = await prisma.domainEvent.findMany({ where: { serial }, orderBy: { seq: 'asc' } });
    all.of(serial).forEach((delivery, i) => {
      const row = rows[i];
      expect(delivery).toMatchObject({ messageId: row.id, routingKey: row.type, deliveryMode: 2, contentType: 'application/json', headers: { seq: String(row.seq), serial } });
      expect(delivery.body).toEqual({ id: row.id, type: row.type, serial, occurredAt: row.occurredAt.toISOString(), data: row.data });
    });
    const restoredIds = rows.filter((r) => r.type === 'Device.HealthRestored').map((r) => r.id);
    await eventually(() => expect(restored.distinct(serial)).toEqual(restoredIds));
    expect(restored.of(serial).every((d) => d.routingKey === 'Device.HealthRestored')).toBe(true);
  });

  withLocalRabbit('a broker restart in the middle loses nothing: events wait in the outbox and each arrives', async () => {
    const serial = uniqueSerial('AMQP');
    const c = await consumer();
    const p = publisher();
    const writer = keepRecording(serial);
    await eventually(() => expect(c.distinct(serial).length).toBeGreaterThan(50));

    await rabbitmqctl('stop_app');
    try {
      // While RabbitMQ is away, new events pile up in the outbox.
      await eventually(async () => expect(await outboxSize()).toBeGreaterThan(20));
    } finally {
      await rabbitmqctl('start_app');
    }
    await new Promise((r) => setTimeout(r, 500));
    const ids = await writer.stop();

    await eventually(async () => expect(await outboxSize()).toBe(0), 60_000);
    await eventually(() => expect(c.distinct(serial)).toHaveLength(ids.length), 60_000);
    expect(new Set(c.distinct(serial))).toEqual(new Set(await recorded(serial)));
    const duplicates = c.of(serial).length - ids.length;
    console.info(`broker restart: ${ids.length} events, ${duplicates} redelivered duplicates (consumers dedupe by message id), ${p.published} confirmed`);
  }, 120_000);

  test('a publisher killed outright and started again loses nothing', async () => {
    const serial = uniqueSerial('AMQP');
    const c = await consumer();
    let child = publisherProcess();
    const writer = keepRecording(serial);
    await eventually(() => expect(c.distinct(serial).length).toBeGreaterThan(50), 60_000);

    const killed = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await killed;
    // With no publisher, new events wait in the outbox.
    await eventually(async () => expect(await outboxSize()).toBeGreaterThan(20));

    child = publisherProcess();
    await new Promise((r) => setTimeout(r, 300));
    const ids = await writer.stop();
    await eventually(async () => expect(await outboxSize()).toBe(0), 60_000);
    await eventually(() => expect(c.distinct(serial)).toHaveLength(ids.length), 60_000);
    expect(new Set(c.distinct(serial))).toEqual(new Set(await recorded(serial)));
  }, 120_000);

  test('two publishers at once publish each event once, in seq order', async () => {
    const serial = uniqueSerial('AMQP');
    const c = await consumer();
    const [a, b] = [publisher(), publisher()];
    const batches = await Promise.all(Array.from({ length: 20 }, () => record(serial, 10)));

    await eventually(() => expect(c.distinct(serial)).toHaveLength(200));
    await eventually(async () => expect(await outboxSize()).toBe(0));
    expect(c.of(serial)).toHaveLength(200);
    expect(c.of(serial).map((d) => d.messageId)).toEqual(await recorded(serial));
    expect(new Set(batches.flat())).toEqual(new Set(c.distinct(serial)));
    expect(a.published + b.published).toBe(200);
  });
});
