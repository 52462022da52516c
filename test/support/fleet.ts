import { randomUUID } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime, type LogEntry, type Worker } from '@temporalio/worker';
import type { AddressInfo } from 'node:net';
import mqtt from 'mqtt';
import pino from 'pino';
import { createApp } from '../../api/app';
import type { DeviceUpdateStream } from '../../api/device-update-stream';
import type { EventStream } from '../../api/event-stream';
import { createApiStreams } from '../../api/streams';
import { listenHttp } from '../../infra/http-server';
import { loadConfig, type Config } from '../../config';
import { createPrisma, type Prisma } from '../../infra/prisma';
import { createGreengrassClient } from '../../infra/greengrass';
import { startLocalGreengrass, type LocalGreengrass } from '../../infra/greengrass-local';
import type { ActivityDeps } from '../../activities';
import { createFleetWorker } from '../../workers/fleet-worker';
import { startIngestWorker, type IngestWorker } from '../../workers/ingest';
import type { RobotSignaller } from '../../ingest/robot-inbox-relay';

/**
 * The fleet backend wired for one test file against the shared real stack: a robot worker on its
 * own task queue, an ingest worker, and clients. `restartWorker` and `restartIngest` stop one
 * piece and bring up a fresh one, as a crash and redeploy would.
 */
export type TestFleet = {
  config: Config;
  prisma: Prisma;
  temporal: Client;
  taskQueue: string;
  ingest: IngestWorker;
  /** GET on the fleet's API with a key of every scope. */
  api(path: string): Promise<{ status: number; body: any }>;
  /** Any request on the fleet's API; `key` defaults to `keys.all`. */
  request(method: string, path: string, body?: unknown, key?: string): Promise<{ status: number; body: any }>;
  /** API keys: every scope, and `read` only. */
  keys: { all: string; read: string };
  /** The API's base URL, for requests the helpers do not make (raw bodies, other headers). */
  url: string;
  /** GET /v1/events/stream's sessions and their shared database listener. */
  eventStream: EventStream;
  /** GET /v1/device-updates/stream's sessions, on the same listener. */
  deviceUpdates: DeviceUpdateStream;
  /** The local Greengrass V2 service the worker's and the API's SDK client talk to (unless `deps.greengrass` was given). */
  greengrass: LocalGreengrass;
  stopWorker(): Promise<void>;
  startWorker(): Promise<void>;
  /** Stops the ingest worker, runs `whileDown`, and starts a new one on the same MQTT session. */
  restartIngest(whileDown?: () => Promise<void>): Promise<void>;
  stop(): Promise<void>;
};

let runtimeInstalled = false;

/** Temporal's runtime, once per test file, before any connection; `logger` receives its logs (else warnings only). */
export function installRuntime(logger?: pino.Logger): void {
  if (runtimeInstalled) return;
  const forward = logger && ((e: LogEntry) => logger.info({ ...e.meta, temporalLevel: e.level }, e.message));
  Runtime.install({ logger: forward ? new DefaultLogger('TRACE', forward) : new DefaultLogger('WARN') });
  runtimeInstalled = true;
}

/** `opts.logger` receives what the API, the ingest worker and (if this file installs the runtime first) Temporal's worker log. */
export async function startFleet(
  env: Record<string, string> = {},
  deps: Omit<Partial<ActivityDeps>, 'prisma'> = {},
  opts: {
    logger?: pino.Logger;
    interceptSignal?: (signal: RobotSignaller) => RobotSignaller;
    /** Another Temporal server than the shared one (test/support/time-skipping.ts). */
    temporalAddress?: string;
    /** Another MQTT broker than the shared one (with `deps.mqtt` for the worker's own connection). */
    mqttUrl?: string;
  } = {},
): Promise<TestFleet> {
  const logger = opts.logger ?? pino({ level: 'silent' });
  installRuntime(opts.logger);
  const apiKey = `test-key-${randomUUID()}`;
  const readKey = `test-read-key-${randomUUID()}`;
  // RabbitMQ only for the tests that ask for it (CI exports AMQP_URL for the whole suite).
  const config = loadConfig({ ...process.env, AMQP_URL: undefined, LOG_LEVEL: 'silent', API_KEYS: `${apiKey}:read,operate,deploy;${readKey}:read`, ...env });
  const taskQueue = `test-${randomUUID()}`;
  const prisma = createPrisma(required('DATABASE_URL'));
  // Every robot in the (shared) test database is a core device; executions take 3 steps of 150 ms.
  const localGreengrass = await startLocalGreengrass({
    stepMs: Number(env.GREENGRASS_LOCAL_STEP_MS ?? 150),
    knownThings: async () => (await prisma.device.findMany({ select: { serialNumber: true } })).map((d) => d.serialNumber),
  });
  const greengrass = deps.greengrass ?? createGreengrassClient({ region: localGreengrass.region, endpoint: localGreengrass.url, local: true });
  // The worker's own MQTT client, for the activities that publish commands to robots.
  const commandsMqtt = deps.mqtt ?? (await mqtt.connectAsync(required('MQTT_URL'), { clientId: `worker-${taskQueue}`, reconnectPeriod: 1000 }));
  const address = opts.temporalAddress ?? required('TEMPORAL_ADDRESS');
  const nativeConnection = await NativeConnection.connect({ address });
  const connection = await Connection.connect({ address });
  const temporal = new Client({ connection });
  let worker: Worker | null = null;
  let running: Promise<void> | null = null;

  const startWorker = async () => {
    worker = await createFleetWorker({
      connection: nativeConnection,
      namespace: 'default',
      activityDeps: { prisma, greengrass, mqtt: commandsMqtt, ...deps },
      taskQueue,
      workflowBundle: { codePath: required('TEST_WORKFLOW_BUNDLE') },
      maxCachedWorkflows: 100,
    });
    running = worker.run();
  };
  const stopWorker = async () => {
    worker?.shutdown();
    await running;
    worker = null;
  };
  const newIngest = () => startIngestWorker({ mqttUrl: opts.mqttUrl ?? required('MQTT_URL'), databaseUrl: required('DATABASE_URL'), prisma, temporal, config, clientId: `ingest-${taskQueue}`, taskQueue, logger: opts.logger, interceptSignal: opts.interceptSignal });

  await startWorker();
  const streams = createApiStreams({ prisma, databaseUrl: required('DATABASE_URL'), logger: pino({ level: 'silent' }), heartbeatMs: config.EVENTS_STREAM_HEARTBEAT_SECONDS * 1000 });
  const { eventStream, deviceUpdates } = streams;
  const server = await listenHttp(createApp({ prisma, temporal, config, logger, taskQueue, greengrass, eventStream, deviceUpdates }), 0, '127.0.0.1');
  const apiUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const fleet: TestFleet = {
    config,
    prisma,
    temporal,
    taskQueue,
    ingest: await newIngest(),
    api: async (path) => {
      const res = await fetch(`${apiUrl}${path}`, { headers: { 'x-api-key': apiKey } });
      return { status: res.status, body: await res.json() };
    },
    request: async (method, path, body, key = apiKey) => {
      const res = await fetch(`${apiUrl}${path}`, {
        method,
        headers: { 'x-api-key': key, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await res.text();
      return { status: res.status, body: text ? JSON.parse(text) : undefined };
    },
    keys: { all: apiKey, read: readKey },
    url: apiUrl,
    greengrass: localGreengrass,
    eventStream,
    deviceUpdates,
    stopWorker,
    startWorker,
    restartIngest: async (whileDown) => {
      await fleet.ingest.close();
      await whileDown?.();
      fleet.ingest = await newIngest();
    },
    stop: async () => {
      await streams.close(); // ends open streams, which would keep the server from closing
      await new Promise((r) => server.close(r));
      await fleet.ingest.close();
      await stopWorker();
      await prisma.$disconnect();
      await connection.close();
      await nativeConnection.close();
      await localGreengrass.stop();
      if (!deps.mqtt) await commandsMqtt.endAsync();
    },
  };
  return fleet;
}

export function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run the tests with npm test (test/global-setup.ts sets it)`);
  return value;
}

/**
 * Retries an assertion until it passes or the time is up, then throws its last error. The deadline
 * is long on purpose: it must hold on a machine whose other core is busy (.ci/run runs the suite
 * a second time beside a CPU burner); a passing check returns at once.
 */
export async function eventually<T>(check: () => Promise<T> | T, timeoutMs = 60_000, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await check();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((r) => setTimeout(r, everyMs));
    }
  }
}

export const uniqueSerial = (prefix = 'T') => `${prefix}${randomUUID().replace(/-/g, '').slice(0, 10).toUpperCase()}`;
