import { createServer } from 'node:http';
import { register } from 'prom-client';
import pino from 'pino';
import { heartbeatRules, loadConfig, type Config } from '../config';
import { findSilentRobots, storeHeartbeats, type StoredUpdate } from '../store/devices';
import { pruneRejectedMessages, storeRejected } from '../store/rejected-messages';
import { startRejectedRetention } from '../ingest/rejected-retention';
import { robotInboxBacklog } from '../store/robot-inbox';
import { RobotInboxRelay, type RobotSignaller } from '../ingest/robot-inbox-relay';
import { SilenceSweeper } from '../ingest/silence-sweeper';
import { HeartbeatPipeline, type PipelineDeps } from '../ingest/heartbeat-pipeline';
import { connectIngest } from '../ingest/mqtt-ingest';
import { startSqsSource } from '../ingest/sqs-source';
import { createSqsClient } from '../infra/sqs';
import { mqttConnectOptions } from '../infra/mqtt-options';
import { ingestMetrics, rejectedField, setInboxSource, setPendingSource } from '../ingest/metrics';
import { connectCommandAcks } from '../ingest/command-acks';
import { signalCommandAck } from '../clients/commands';
import { nudgeSilentRobot, signalHeartbeats, type RobotStart } from '../clients/robots';
import { lidSettings } from '../domain/lid';
import { deviceFromProjection } from '../domain/device-projection';
import { heartbeatReceived } from '../domain/heartbeat-received';
import { heartbeatEventPublisher } from '../ingest/heartbeat-events';
import { startOperationsFactsConsumer, type OperationsFactsConsumer } from '../ingest/operations-facts-consumer';
import { pinHashSecret } from '../domain/lid-pins';
import { connectTemporal, whenTemporalAnswers, createTemporalClient, type TemporalClient } from '../clients/connection';
import { createPrisma, type Prisma } from '../infra/prisma';

/** The ingest worker: heartbeats in (MQTT or SQS), projection writes and robot workflow signals out. */
export type IngestWorker = {
  pipeline: HeartbeatPipeline;
  /** Operations and Deliveries facts from RabbitMQ; null without AMQP_URL. */
  operationsFacts: OperationsFactsConsumer | null;
  close(): Promise<void>;
};

export async function startIngestWorker(deps: {
  mqttUrl: string;
  databaseUrl: string;
  prisma: Prisma;
  temporal: TemporalClient;
  config: Config;
  clientId?: string;
  taskQueue?: string;
  logger?: pino.Logger;
  /** Stands between the ingest and its robot signaller (tests make a robot unreachable with it). */
  interceptSignal?: (signal: RobotSignaller) => RobotSignaller;
}): Promise<IngestWorker> {
  const log = deps.logger ?? pino({ level: deps.config.LOG_LEVEL });
  const start: RobotStart = { offlineAfterMs: deps.config.OFFLINE_AFTER_SECONDS * 1000, lid: lidSettings(deps.config), taskQueue: deps.taskQueue };
  const signaller: RobotSignaller = (serial, heartbeats) => signalHeartbeats(deps.temporal, start, serial, heartbeats);
  const relay = new RobotInboxRelay({
    databaseUrl: deps.databaseUrl,
    signalRobot: deps.interceptSignal ? deps.interceptSignal(signaller) : signaller,
    logger: log,
    onRound: (r) => {
      ingestMetrics.signals.inc(r.signals);
      ingestMetrics.inboxAge.observe(r.oldestAgeMs / 1000);
    },
  });
  const sweeper = startSilenceSweeper(deps.prisma, deps.temporal, deps.config, log);
  const retention = startRejectedRetention({ prune: (before) => pruneRejectedMessages(deps.prisma, before), keepMs: deps.config.REJECTED_MESSAGES_KEEP_DAYS * 86_400_000, logger: log });
  const rules = heartbeatRules(deps.config);
  // Device.HeartbeatReceived goes out before a batch commits; without AMQP_URL nothing is published and nothing waits.
  const events = deps.config.AMQP_URL ? heartbeatEventPublisher({ amqpUrl: deps.config.AMQP_URL, env: deps.config.EVENTS_ENV, logger: log }) : null;
  const beforeCommit = events
    ? (updates: StoredUpdate[]) => events.publish(updates.map((u) => heartbeatReceived(u.heartbeat, deviceFromProjection(u.device), u.updatedFields)))
    : undefined;
  const pipeline = ingestPipeline(deps.config, log, {
    storeHeartbeats: async (heartbeats) => {
      const stored = await storeHeartbeats(deps.prisma, heartbeats, rules, { inbox: true, beforeCommit }).catch((error: unknown) => {
        sweeper.notHeard();
        throw error;
      });
      if (stored.forwards.length > 0) relay.kick();
      return { forwarded: stored.forwards.length, corrected: stored.corrected, epochs: stored.epochs };
    },
    storeRejected: (rejected) => storeRejected(deps.prisma, rejected),
  });
  setInboxSource(() => robotInboxBacklog(deps.prisma));
  relay.start();
  const source = await heartbeatSource(deps.config, deps.mqttUrl, deps.clientId ?? 'fleet-ingest', pipeline, log);
  const acks = await connectCommandAcks({
    mqttUrl: deps.mqttUrl,
    clientId: `${deps.clientId ?? 'fleet-ingest'}-acks`,
    shareGroup: deps.config.MQTT_SHARE_GROUP,
    connectOptions: mqttConnectOptions(deps.config),
    deps: {
      signal: (serial, ack) => signalCommandAck(deps.temporal, serial, ack),
      storeRejected: (rejected) => storeRejected(deps.prisma, rejected),
      onRejected: (reason) => {
        ingestMetrics.rejected.inc({ field: rejectedField(reason) });
        log.warn({ reason }, 'command ack rejected');
      },
      onDropped: (serial, ack) => log.info({ serial, commandId: ack.commandId, status: ack.status }, 'ack for a command no longer followed'),
      onRetry: (error) => log.warn({ err: (error as Error).message }, 'command ack signal failed; retrying'),
    },
    onError: (e) => log.warn({ err: e.message }, 'mqtt error (acks)'),
  });
  // Facts from RabbitMQ beside the heartbeats; without AMQP_URL, POST /v1/operations-events alone takes them.
  const operationsFacts = deps.config.AMQP_URL
    ? startOperationsFactsConsumer({
        amqpUrl: deps.config.AMQP_URL,
        env: deps.config.EVENTS_ENV,
        logger: log,
        facts: { prisma: deps.prisma, temporal: deps.temporal, robotStart: start, pushIntervalMs: deps.config.PARTNER_PUSH_INTERVAL_SECONDS * 1000, taskQueue: deps.taskQueue },
      })
    : null;
  return {
    pipeline,
    operationsFacts,
    close: async () => {
      await operationsFacts?.close();
      await pipeline.close();
      await source.close();
      await relay.stop();
      await sweeper.stop();
      await retention.stop();
      await acks.close();
      await events?.close();
    },
  };
}

/** MQTT (shared subscriptions, several connections, TLS) or the IoT Rule's SQS queue, into the pipeline. */
async function heartbeatSource(config: Config, mqttUrl: string, clientId: string, pipeline: HeartbeatPipeline, log: pino.Logger): Promise<{ close(): Promise<void> }> {
  if (config.INGEST_SOURCE === 'sqs') {
    if (!config.SQS_HEARTBEAT_QUEUE_URL) throw new Error('INGEST_SOURCE=sqs needs SQS_HEARTBEAT_QUEUE_URL (npm start runs a local queue when it is unset)');
    const sqs = createSqsClient({ region: config.AWS_REGION, endpoint: config.SQS_ENDPOINT });
    const source = startSqsSource({ sqs, queueUrl: config.SQS_HEARTBEAT_QUEUE_URL, receivers: config.SQS_RECEIVERS, pipeline, onError: (e) => log.warn({ err: e.message }, 'sqs error') });
    return { close: async () => (await source.close(), sqs.destroy()) };
  }
  return connectIngest({
    mqttUrl,
    clientId,
    pipeline,
    shareGroup: config.MQTT_SHARE_GROUP,
    connections: config.MQTT_CONNECTIONS,
    maxUnacked: config.MQTT_MAX_UNACKED,
    connectOptions: mqttConnectOptions(config),
    onError: (e) => log.warn({ err: e.message }, 'mqtt error'),
  });
}

/** The batch pipeline with its metrics and logs, around a way of storing heartbeats (the benchmark's yardsticks bring theirs). */
export function ingestPipeline(config: Config, log: pino.Logger, store: Pick<PipelineDeps, 'storeHeartbeats' | 'storeRejected'>): HeartbeatPipeline {
  // A robot with one bad field does it at every heartbeat: one line per reason per 10 s, with the count.
  const droppedLog = everyTenSeconds((count, dropped: string[]) => log.warn({ dropped, heartbeats: count }, 'heartbeat applied without parts that failed validation'));
  const pipeline = new HeartbeatPipeline(
    {
      ...store,
      onAccepted: (n) => ingestMetrics.accepted.inc(n),
      onRejected: (reason) => {
        ingestMetrics.rejected.inc({ field: rejectedField(reason) });
        log.warn({ reason }, 'robot message rejected');
      },
      onDropped: (parts) => {
        for (const part of parts) ingestMetrics.dropped.inc({ field: part.kind });
        droppedLog.note(parts.map((p) => p.reason));
      },
      onFlushed: (s) => {
        ingestMetrics.written.inc(s.heartbeats);
        ingestMetrics.flushSeconds.observe(s.ms / 1000);
        if (s.corrected) ingestMetrics.clockCorrected.inc(s.corrected);
        for (const change of s.epochs ?? []) ingestMetrics.clockEpochs.inc({ change });
      },
      onRetry: (step, error) => {
        ingestMetrics.retries.inc({ step });
        log.warn({ step, err: (error as Error).message }, 'ingest batch step failed; retrying');
      },
    },
    { pinSecret: pinHashSecret(config), maxPending: config.INGEST_MAX_PENDING },
  );
  setPendingSource(() => pipeline.pending());
  pipeline.start();
  return pipeline;
}

export function startSilenceSweeper(prisma: Prisma, temporal: TemporalClient, config: Config, log: pino.Logger): SilenceSweeper {
  const sweeper = new SilenceSweeper({
    findSilent: (silentSince, heardSince) => findSilentRobots(prisma, silentSince, heardSince),
    nudgeRobot: (robot) => nudgeSilentRobot(temporal, robot),
    offlineAfterMs: config.OFFLINE_AFTER_SECONDS * 1000,
    everyMs: config.SILENCE_SWEEP_SECONDS * 1000,
    logger: log,
    onSweep: (s) => ingestMetrics.silenceNudges.inc(s.nudged),
  });
  sweeper.start();
  return sweeper;
}

async function main(): Promise<void> {
  const config = loadConfig();
  if (!config.DATABASE_URL || !config.MQTT_URL) throw new Error('DATABASE_URL and MQTT_URL are required to run ingest on its own');
  const connection = await whenTemporalAnswers(config, () => connectTemporal(config), (error) => console.warn(`Temporal not reachable yet (${error.message}); trying again`));
  const ingest = await startIngestWorker({
    mqttUrl: config.MQTT_URL,
    clientId: config.MQTT_CLIENT_ID,
    databaseUrl: config.DATABASE_URL,
    prisma: createPrisma(config.DATABASE_URL),
    temporal: createTemporalClient(connection, config.TEMPORAL_NAMESPACE),
    config,
  });
  if (config.INGEST_METRICS_PORT !== undefined) serveMetrics(config.INGEST_METRICS_PORT);
  const shutdown = () => void ingest.close().then(() => process.exit(0));
  process.once('SIGINT', shutdown);
  process.once('SIGTERM', shutdown);
}

/** On its own the ingest worker has no API process to show its metrics, so it serves them itself. */
export function serveMetrics(port: number): void {
  createServer((_req, res) => {
    register.metrics().then((text) => res.writeHead(200, { 'content-type': register.contentType }).end(text), () => res.writeHead(500).end());
  }).listen(port, '127.0.0.1');
}

if (require.main === module) {
  main().catch((error) => {
    console.error(error);
    process.exit(1);
  });
}

/** Calls `write` for a note at most once every 10 s per distinct note, with how many came since. */
function everyTenSeconds(write: (count: number, note: string[]) => void): { note(value: string[]): void } {
  const seen = new Map<string, { count: number; writtenAt: number }>();
  return {
    note(value) {
      const key = value.join('\n');
      const entry = seen.get(key) ?? { count: 0, writtenAt: 0 };
      entry.count += 1;
      if (Date.now() - entry.writtenAt >= 10_000) {
        write(entry.count, value);
        entry.count = 0;
        entry.writtenAt = Date.now();
      }
      // Robots choose what fails: a bounded memory, at worst a line more.
      if (seen.size >= 1000 && !seen.has(key)) seen.clear();
      seen.set(key, entry);
    },
  };
}
