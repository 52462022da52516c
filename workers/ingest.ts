import { createServer } from 'node:http';
import { Connection, type Client } from '@temporalio/client';
import { register } from 'prom-client';
import type { MqttClient } from 'mqtt';
import pino from 'pino';
import { forwardRule, loadConfig, type Config } from '../config';
import { findSilentRobots, storeRejected, writeHeartbeats } from '../store/devices';
import { queueForRobots, robotInboxBacklog } from '../store/robot-inbox';
import { RobotInboxRelay } from '../ingest/robot-inbox-relay';
import { SilenceSweeper } from '../ingest/silence-sweeper';
import { HeartbeatPipeline } from '../ingest/heartbeat-pipeline';
import { connectIngest } from '../ingest/mqtt-ingest';
import { ingestMetrics, rejectedField, setInboxSource, setPendingSource } from '../ingest/metrics';
import { createRobotSignaller, createSilenceNudger, type RobotSignaller } from '../ingest/signal-robot';
import { connectCommandAcks, createAckSignaller } from '../ingest/command-acks';
import { lidSettings } from '../domain/lid';
import { pinHashSecret } from '../domain/lid-pins';
import { connectTemporal, createTemporalClient } from '../infra/temporal';
import { createPrisma, type Prisma } from '../infra/prisma';

/** The ingest worker: MQTT heartbeats in, projection writes and robot workflow signals out. */
export type IngestWorker = { pipeline: HeartbeatPipeline; mqtt: MqttClient; close(): Promise<void> };

export async function startIngestWorker(deps: {
  mqttUrl: string;
  databaseUrl: string;
  prisma: Prisma;
  temporal: Client;
  config: Config;
  clientId?: string;
  taskQueue?: string;
  logger?: pino.Logger;
  /** Stands between the ingest and its robot signaller (tests make a robot unreachable with it). */
  interceptSignal?: (signal: RobotSignaller) => RobotSignaller;
}): Promise<IngestWorker> {
  const log = deps.logger ?? pino({ level: deps.config.LOG_LEVEL });
  const signaller = createRobotSignaller(deps.temporal, {
    offlineAfterMs: deps.config.OFFLINE_AFTER_SECONDS * 1000,
    taskQueue: deps.taskQueue,
    lid: lidSettings(deps.config),
  });
  const signalRobot = deps.interceptSignal ? deps.interceptSignal(signaller) : signaller;
  const relay =
    deps.config.INGEST_MODE === 'designed'
      ? new RobotInboxRelay({
          databaseUrl: deps.databaseUrl,
          signalRobot,
          logger: log,
          onRound: (r) => {
            ingestMetrics.signals.inc(r.signals);
            ingestMetrics.inboxAge.observe(r.oldestAgeMs / 1000);
          },
        })
      : null;
  const sweeper =
    deps.config.INGEST_MODE === 'floor'
      ? null
      : new SilenceSweeper({
          findSilent: (silentSince, heardSince) => findSilentRobots(deps.prisma, silentSince, heardSince),
          nudgeRobot: createSilenceNudger(deps.temporal),
          offlineAfterMs: deps.config.OFFLINE_AFTER_SECONDS * 1000,
          everyMs: deps.config.SILENCE_SWEEP_SECONDS * 1000,
          logger: log,
          onSweep: (s) => ingestMetrics.silenceNudges.inc(s.nudged),
        });
  const pipeline = new HeartbeatPipeline(
    {
      writeHeartbeats: (hbs) => writeHeartbeats(deps.prisma, hbs),
      storeRejected: (rejected) => storeRejected(deps.prisma, rejected),
      queueForRobots: (hbs) => queueForRobots(deps.prisma, hbs),
      signalRobot: deps.config.INGEST_MODE === 'naive' ? signalRobot : undefined,
      onQueued: () => relay?.kick(),
      onAccepted: (n) => ingestMetrics.accepted.inc(n),
      onRejected: (reason) => {
        ingestMetrics.rejected.inc({ field: rejectedField(reason) });
        log.warn({ reason }, 'robot message rejected');
      },
      onFlushed: (s) => {
        if (deps.config.INGEST_MODE === 'naive') ingestMetrics.signals.inc(s.forwarded);
        ingestMetrics.written.inc(s.heartbeats);
        ingestMetrics.flushSeconds.observe(s.ms / 1000);
      },
      onRetry: (step, error) => {
        ingestMetrics.retries.inc({ step });
        log.warn({ step, err: (error as Error).message }, 'ingest batch step failed; retrying');
      },
    },
    { forward: forwardRule(deps.config), mode: deps.config.INGEST_MODE, pinSecret: pinHashSecret(deps.config), maxPending: deps.config.INGEST_MAX_PENDING },
  );
  setPendingSource(() => pipeline.pending());
  setInboxSource(() => robotInboxBacklog(deps.prisma));
  pipeline.start();
  relay?.start();
  sweeper?.start();
  const mqtt = await connectIngest({
    mqttUrl: deps.mqttUrl,
    clientId: deps.clientId ?? 'fleet-ingest',
    pipeline,
    onError: (e) => log.warn({ err: e.message }, 'mqtt error'),
  });
  const acks = await connectCommandAcks({
    mqttUrl: deps.mqttUrl,
    clientId: `${deps.clientId ?? 'fleet-ingest'}-acks`,
    deps: {
      signal: createAckSignaller(deps.temporal),
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
  return {
    pipeline,
    mqtt,
    close: async () => {
      await pipeline.close();
      await mqtt.endAsync();
      await relay?.stop();
      await sweeper?.stop();
      await acks.close();
    },
  };
}

async function main(): Promise<void> {
  const config = loadConfig();
  if (!config.DATABASE_URL || !config.MQTT_URL) throw new Error('DATABASE_URL and MQTT_URL are required to run ingest on its own');
  // The floor mode of the benchmark runs with no Temporal at all.
  const connection = config.INGEST_MODE === 'floor' ? Connection.lazy() : await connectTemporal(config);
  const ingest = await startIngestWorker({
    mqttUrl: config.MQTT_URL,
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
function serveMetrics(port: number): void {
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
