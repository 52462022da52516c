import { randomUUID } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime, type Worker } from '@temporalio/worker';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import { createApp } from '../../api/app';
import { loadConfig, type Config } from '../../config';
import { createPrisma, type Prisma } from '../../infra/prisma';
import type { ActivityDeps } from '../../activities';
import { createFleetWorker } from '../../workers/fleet-worker';
import { startIngestWorker, type IngestWorker } from '../../workers/ingest';

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
  stopWorker(): Promise<void>;
  startWorker(): Promise<void>;
  restartIngest(): Promise<void>;
  stop(): Promise<void>;
};

let runtimeInstalled = false;

export async function startFleet(env: Record<string, string> = {}, deps: Omit<Partial<ActivityDeps>, 'prisma'> = {}): Promise<TestFleet> {
  if (!runtimeInstalled) {
    Runtime.install({ logger: new DefaultLogger('WARN') });
    runtimeInstalled = true;
  }
  const apiKey = `test-key-${randomUUID()}`;
  const config = loadConfig({ ...process.env, LOG_LEVEL: 'silent', API_KEYS: `${apiKey}:read,operate,deploy`, ...env });
  const taskQueue = `test-${randomUUID()}`;
  const prisma = createPrisma(required('DATABASE_URL'));
  const address = required('TEMPORAL_ADDRESS');
  const nativeConnection = await NativeConnection.connect({ address });
  const connection = await Connection.connect({ address });
  const temporal = new Client({ connection });
  let worker: Worker | null = null;
  let running: Promise<void> | null = null;

  const startWorker = async () => {
    worker = await createFleetWorker({
      connection: nativeConnection,
      namespace: 'default',
      activityDeps: { prisma, ...deps },
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
  const newIngest = () => startIngestWorker({ mqttUrl: required('MQTT_URL'), prisma, temporal, config, clientId: `ingest-${taskQueue}`, taskQueue });

  await startWorker();
  const server = await listen(createApp({ prisma, temporal, config, logger: pino({ level: 'silent' }) }));
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
    stopWorker,
    startWorker,
    restartIngest: async () => {
      await fleet.ingest.close();
      fleet.ingest = await newIngest();
    },
    stop: async () => {
      await new Promise((r) => server.close(r));
      await fleet.ingest.close();
      await stopWorker();
      await prisma.$disconnect();
      await connection.close();
      await nativeConnection.close();
    },
  };
  return fleet;
}

function listen(app: ReturnType<typeof createApp>): Promise<Server> {
  return new Promise((resolve) => {
    const server = app.listen(0, '127.0.0.1', () => resolve(server));
  });
}

export function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run the tests with npm test (test/global-setup.ts sets it)`);
  return value;
}

/** Retries an assertion until it passes or the time is up, then throws its last error. */
export async function eventually<T>(check: () => Promise<T> | T, timeoutMs = 20_000, everyMs = 100): Promise<T> {
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
