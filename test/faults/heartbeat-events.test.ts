import { randomUUID } from 'node:crypto';
import mqtt, { type MqttClient } from 'mqtt';
import { HEARTBEAT_RECEIVED, heartbeatEventId } from '../../domain/heartbeat-received';
import { heartbeatExchangeName } from '../../ingest/heartbeat-events';
import { startProcessStack, type ProcessStack } from '../support/processes';
import { AmqpConsumer, RABBITMQCTL, rabbitmqctl, type Delivery } from '../support/rabbitmq';
import { sleep, type FleetLoad } from './fleet-load';
import { runUnderFault } from './scenarios';

/**
 * Device.HeartbeatReceived (issue 18) under faults, on a real RabbitMQ (AMQP_URL, as .ci/run sets
 * it; skipped without): `kill -9` of the ingest worker mid-load, started again 3 s later, and
 * RabbitMQ stopped (`rabbitmqctl stop_app` on RABBITMQ_NODENAME) for 30 s under load. Each runs
 * through runUnderFault (lid cycles, a rollout, an API client; the fleet audit: nothing lost or
 * doubled) with a consumer bound to the stack's own `<EVENTS_ENV>.devices/heartbeat-received` from
 * before the load starts, and a witness subscribed to `robot/+/status` that records every heartbeat
 * the robots published.
 *
 * What "every stored heartbeat's event arrives at least once" means here. The ingest publishes one
 * event per robot per batch, for the robot's newest heartbeat of the batch, and only when that
 * heartbeat becomes the robot's stored newest (the projection's last_heartbeat_at); a heartbeat
 * overtaken within its batch (several per robot behind a backlog, as after the restart) or older
 * than the stored newest is never the stored newest and has no event. So "stored" means "committed
 * as its robot's newest", and the events are confirmed by RabbitMQ before that commit. Asserted:
 * - the event of every heartbeat that was ever the stored newest arrived: checked for the final
 *   newest of every robot of the load (the projection's, once drained), and for every newest a
 *   sampler saw reading the projection every 200 ms throughout the scenario (a heartbeat stays the
 *   newest for about 500 ms at 2 Hz, so most heartbeats are sampled);
 * - every delivered event is the event of a heartbeat a robot published: its id is
 *   heartbeatEventId(serial, robot timestamp) of a heartbeat the witness saw, its body names the
 *   same robot, its message id is its id;
 * - per robot, the distinct events (deduplicated by id, in order of first arrival) are in
 *   increasing heartbeat time. One exception, in the kill only: a batch the kill cut off between
 *   its publish and its commit leaves an event whose heartbeat never was stored, and the
 *   redelivered messages may then be batched so that an older heartbeat is stored next; such an
 *   out-of-order event must have arrived before the new ingest process was started;
 * - a duplicate is the same event again (same id, robot and heartbeat time): a redelivery by
 *   RabbitMQ or a republish of a batch that was retried; deduplicating by id gives exactly once.
 * RabbitMQ stopped: the ingest waits (its batch is retried until RabbitMQ confirms; nothing is
 * acknowledged to the robots meanwhile), which the row's notes show as the projection standing still.
 */

const AMQP_URL = process.env.AMQP_URL;
if (!AMQP_URL) console.warn('test/faults/heartbeat-events.test.ts: AMQP_URL is unset, so these tests are skipped. Run `export AMQP_URL=$(bash scripts/rabbitmq.sh)` first (as .ci/run does).');
else if (!RABBITMQCTL) console.warn('test/faults/heartbeat-events.test.ts: rabbitmqctl is not installed here, so the RabbitMQ stop is skipped (scripts/rabbitmq.sh installs a local RabbitMQ).');
const withRabbit = AMQP_URL ? describe : describe.skip;
const withLocalRabbit = AMQP_URL && RABBITMQCTL ? test : test.skip;

const DOWN_MS = 3000;
const RABBIT_DOWN_MS = 30_000;
const SAMPLE_EVERY_MS = 200;

withRabbit('Device.HeartbeatReceived under faults', () => {
  const env = `hbfaults${randomUUID().slice(0, 8)}`;
  let stack: ProcessStack;
  let consumer: AmqpConsumer;
  let witness: MqttClient;
  /** Every heartbeat the robots published: event id -> robot and robot timestamp. */
  const published = new Map<string, { serial: string; at: number }>();
  const publishedSerials = new Set<string>();

  beforeAll(async () => {
    consumer = await new AmqpConsumer(AMQP_URL!, `test-hb-faults-${randomUUID()}`, heartbeatExchangeName(env), [HEARTBEAT_RECEIVED]).start();
    // Commands outlive a worker's restart; wrong PINs are typed all along, so the keypad must never lock.
    // The offline timeout is shorter than the RabbitMQ outage: robots must stay online while the
    // ingest cannot store what it hears (the fleet audit expects each to come online once).
    stack = await startProcessStack({ env: { AMQP_URL: AMQP_URL!, EVENTS_ENV: env, COMMAND_TIMEOUT_SECONDS: '180', PIN_LOCKOUT_ATTEMPTS: '1000000', OFFLINE_AFTER_SECONDS: '12' } });
    witness = await mqtt.connectAsync(stack.mqttUrl, { clientId: `hb-faults-witness-${process.pid}`, clean: true, reconnectPeriod: 1000 });
    witness.on('message', (topic, payload) => {
      const serial = /^robot\/([^/]+)\/status$/.exec(topic)?.[1];
      let at: unknown;
      try {
        at = serial ? (JSON.parse(payload.toString()) as { timestamp?: unknown }).timestamp : undefined;
      } catch {
        return;
      }
      if (!serial || typeof at !== 'number') return;
      published.set(heartbeatEventId(serial, at), { serial, at });
      publishedSerials.add(serial);
    });
    await witness.subscribeAsync('robot/+/status', { qos: 1 });
  }, 300_000);

  afterAll(async () => {
    await witness?.endAsync();
    await stack?.stop();
    await consumer?.stop({ deleteExchange: true });
  });

  /** Reads the projection every 200 ms: each robot's stored newest heartbeats, as they were seen. */
  function sampleProjection() {
    const seen = new Map<string, Set<number>>();
    let samples = 0;
    let stopped = false;
    const sampling = (async () => {
      while (!stopped) {
        const rows = await stack.prisma.device.findMany({ select: { serialNumber: true, lastHeartbeatAt: true } }).catch(() => []);
        for (const r of rows) if (r.lastHeartbeatAt) (seen.get(r.serialNumber) ?? seen.set(r.serialNumber, new Set()).get(r.serialNumber)!).add(r.lastHeartbeatAt.getTime());
        samples += 1;
        await sleep(SAMPLE_EVERY_MS);
      }
    })();
    return {
      seen,
      get samples() {
        return samples;
      },
      async stop() {
        stopped = true;
        await sampling;
      },
    };
  }

  /**
   * The event checks of the doc comment for the robots of `load`. `cutOffBefore` (the kill): when
   * the new ingest process was started, so that an event which arrived before then may be of a
   * batch the kill cut off; null: no event may be out of order.
   */
  async function auditEvents(load: FleetLoad, sampled: Map<string, Set<number>>, samples: number, cutOffBefore: number | null): Promise<{ problems: string[]; notes: string[] }> {
    const problems: string[] = [];
    const serials = new Set(load.serials);
    // This load's events, and any of a robot that published nothing.
    const all = consumer.deliveries.filter((d) => d.body.serial === null || serials.has(d.body.serial) || !publishedSerials.has(d.body.serial));
    for (const d of all) {
      const hb = published.get(d.messageId);
      if (!hb) problems.push(`event ${d.messageId} (${d.body.serial} ${d.body.occurredAt}) is of no heartbeat a robot published`);
      else if (d.body.serial !== hb.serial) problems.push(`event ${d.messageId} names ${d.body.serial}, its heartbeat is ${hb.serial}'s`);
      if (d.body.id !== d.messageId || d.body.type !== HEARTBEAT_RECEIVED || d.routingKey !== HEARTBEAT_RECEIVED) problems.push(`event ${d.messageId}: body id ${d.body.id}, type ${d.body.type}, routing key ${d.routingKey}`);
    }
    if (!all.some((d) => d.body.serial !== null && serials.has(d.body.serial))) problems.push('no event arrived for the load');

    // Stored newest heartbeats: the final ones, and the ones the sampler saw.
    const rows = await stack.prisma.device.findMany({ where: { serialNumber: { in: load.serials } }, select: { serialNumber: true, lastHeartbeatAt: true } });
    const ids = new Set(consumer.distinct());
    let sampledNewest = 0;
    let sampledMissing = 0;
    for (const serial of load.serials) {
      const last = rows.find((r) => r.serialNumber === serial)?.lastHeartbeatAt?.getTime();
      if (last === undefined) problems.push(`${serial}: not in the projection`);
      else if (!ids.has(heartbeatEventId(serial, last))) problems.push(`${serial}: no event for its last stored heartbeat ${last}`);
      const missing = [...(sampled.get(serial) ?? [])].filter((at) => !ids.has(heartbeatEventId(serial, at)));
      sampledNewest += sampled.get(serial)?.size ?? 0;
      sampledMissing += missing.length;
      if (missing.length > 0) problems.push(`${serial}: no event for ${missing.length} heartbeats seen stored as its newest: ${missing.slice(0, 5).join(', ')}`);
    }

    // Per robot: distinct events in increasing heartbeat time; duplicates are the same event again.
    const mine = all.filter((d) => d.body.serial !== null && serials.has(d.body.serial));
    const first = new Map<string, Delivery>();
    let duplicates = 0;
    let redelivered = 0;
    let outOfOrder = 0;
    for (const d of mine) {
      const earlier = first.get(d.messageId);
      if (!earlier) {
        first.set(d.messageId, d);
        continue;
      }
      duplicates += 1;
      if (d.redelivered) redelivered += 1;
      if (earlier.body.serial !== d.body.serial || earlier.body.occurredAt !== d.body.occurredAt) problems.push(`event ${d.messageId} came twice as different events: ${earlier.body.serial} ${earlier.body.occurredAt}, then ${d.body.serial} ${d.body.occurredAt}`);
    }
    for (const serial of load.serials) {
      const times = [...first.values()].filter((d) => d.body.serial === serial).map((d) => ({ at: published.get(d.messageId)?.at ?? NaN, receivedAt: d.receivedAt }));
      const increasing = (list: { at: number }[]) => list.every((e, i) => i === 0 || e.at > list[i - 1].at);
      const show = (list: { at: number }[]) => list.map((e) => e.at).join(', ');
      if (cutOffBefore === null) {
        if (!increasing(times)) problems.push(`${serial}: events out of heartbeat order: ${show(times)}`);
        continue;
      }
      // The ingest writes one batch at a time, so the kill cut off at most the last batch before it:
      // the old process's events are in order, the new one's too, and the new one's first is newer
      // than every event of the old process but its last.
      const before = times.filter((e) => e.receivedAt < cutOffBefore);
      const after = times.filter((e) => e.receivedAt >= cutOffBefore);
      const committed = before.slice(0, -1).at(-1)?.at ?? -Infinity;
      if (!increasing(before) || !increasing(after) || (after.length > 0 && after[0].at <= committed)) problems.push(`${serial}: events out of heartbeat order: ${show(before)} before the restart, ${show(after)} after`);
      else if (after.length > 0 && before.length > 0 && after[0].at <= before.at(-1)!.at) outOfOrder += 1;
    }
    const distinct = first.size;
    const notes = [
      `${mine.length} Device.HeartbeatReceived delivered for the load, ${distinct} distinct (${duplicates} duplicates: ${redelivered} redelivered by RabbitMQ, ${duplicates - redelivered} republished)`,
      `${sampledNewest} stored newest heartbeats sampled in ${samples} projection reads, ${sampledMissing === 0 ? 'each with its event' : `${sampledMissing} without their event`}`,
      ...(cutOffBefore !== null ? [`${outOfOrder} events of batches cut off by the kill`] : []),
    ];
    return { problems, notes };
  }

  test('kill -9 of the ingest worker mid-load: every stored newest heartbeat has its event, with stable ids, in order', async () => {
    const sampler = sampleProjection();
    let startMs = 0;
    let restartedAt = 0;
    try {
      await runUnderFault(stack, {
        fault: `kill -9 of the ingest worker, started again ${DOWN_MS / 1000} s later, Device.HeartbeatReceived to RabbitMQ`,
        inject: async () => {
          await stack.kill('ingest');
          await sleep(DOWN_MS);
          restartedAt = Date.now();
          await stack.start('ingest');
          startMs = Date.now() - restartedAt;
          return restartedAt;
        },
        during: () => ({ problems: [], notes: [`the new process served after ${(startMs / 1000).toFixed(1)} s`] }),
        audit: async ({ load }) => {
          await sampler.stop();
          return auditEvents(load, sampler.seen, sampler.samples, restartedAt);
        },
      });
    } finally {
      await sampler.stop();
    }
  });

  withLocalRabbit('RabbitMQ stopped for 30 s under load: the ingest waits, nothing is lost, every stored newest heartbeat has its event', async () => {
    const sampler = sampleProjection();
    let advanced = '';
    let firstAfterMs: number | null = null;
    let pendingAtEnd = '';
    try {
      await runUnderFault(stack, {
        fault: `RabbitMQ stopped (rabbitmqctl stop_app) for ${RABBIT_DOWN_MS / 1000} s, Device.HeartbeatReceived published before each batch commits`,
        inject: async ({ load }) => {
          const newest = async () => {
            const rows = await stack.prisma.device.findMany({ where: { serialNumber: { in: load.serials } }, select: { lastHeartbeatAt: true } });
            return rows.reduce((n, r) => n + (r.lastHeartbeatAt?.getTime() ?? 0), 0);
          };
          await rabbitmqctl('stop_app');
          let startedAt = 0;
          try {
            // The batch under way when RabbitMQ went may still commit (its events were confirmed); after that the projection must stand still.
            await sleep(3000);
            const before = { heartbeats: load.count, newest: await newest() };
            await sleep(RABBIT_DOWN_MS - 3000);
            const after = { heartbeats: load.count, newest: await newest() };
            pendingAtEnd = await ingestPending(stack);
            advanced = after.newest === before.newest ? `the projection stood still while ${after.heartbeats - before.heartbeats} heartbeats were published (the ingest waited)` : `the projection went on while RabbitMQ was down`;
          } finally {
            await rabbitmqctl('start_app');
            startedAt = Date.now();
          }
          const arrivedBefore = consumer.deliveries.length;
          void (async () => {
            while (consumer.deliveries.length === arrivedBefore && Date.now() - startedAt < 120_000) await sleep(50);
            if (consumer.deliveries.length > arrivedBefore) firstAfterMs = consumer.deliveries[arrivedBefore].receivedAt - startedAt;
          })();
          return startedAt;
        },
        during: () => ({
          problems: [],
          notes: [advanced, `ingest pending at the end of the outage: ${pendingAtEnd}`, `first event ${firstAfterMs === null ? 'never' : `${(firstAfterMs / 1000).toFixed(1)} s`} after start_app`],
        }),
        audit: async ({ load }) => {
          await sampler.stop();
          return auditEvents(load, sampler.seen, sampler.samples, null);
        },
      });
    } finally {
      await sampler.stop();
      await rabbitmqctl('start_app').catch(() => undefined);
    }
  });
});

/** The ingest workers' fleet_ingest_pending_messages (messages accepted and not yet acknowledged). */
async function ingestPending(stack: ProcessStack): Promise<string> {
  const values = await Promise.all(
    stack.ingestMetricsUrls().map(async ([, url]) => {
      const text = await fetch(url, { signal: AbortSignal.timeout(2000) }).then((r) => r.text(), () => '');
      return /^fleet_ingest_pending_messages (\S+)/m.exec(text)?.[1] ?? '?';
    }),
  );
  return values.join(', ');
}
