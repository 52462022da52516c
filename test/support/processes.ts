import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { join, resolve } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { temporal as proto } from '@temporalio/proto';
import { applyMigrations } from '../../infra/migrate';
import { startEmbeddedPostgres, type RunningPostgres } from '../../infra/postgres';
import { startTemporalDevServer, type RunningTemporal } from '../../infra/temporal-server';
import { startTemporalOnPostgres } from '../../infra/temporal-postgres';
import { findMosquitto, mosquittoConf } from '../../infra/mosquitto';
import { startLocalSqs, type LocalSqs } from '../../infra/sqs-local';
import { createSqsClient } from '../../infra/sqs';
import { startIotRuleBridge, type IotRuleBridge } from '../../infra/iot-rule-local';
import { startLocalGreengrass, type LocalGreengrass } from '../../infra/greengrass-local';
import { createPrisma, type Prisma } from '../../infra/prisma';
import { taskQueues } from '../../temporal.config';
import { freePort } from '../../infra/ports';

/**
 * The fleet backend as separate processes, for fault tests that kill them for real: PostgreSQL,
 * the Temporal dev server (on a database file) and the MQTT broker (embedded aedes, or Mosquitto
 * with persistence) of its own, and the project's entry points workers/fleet-worker.ts,
 * workers/ingest.ts and workers/api.ts (and workers/event-publisher.ts when asked), each its own
 * `node` process. Every server and piece can be stopped, killed and started again on the same ports
 * and files. Own servers mean own task queue, MQTT client ids and database: the defaults of the
 * entry points apply unchanged.
 */

export const repoRoot = resolve(__dirname, '..', '..');

export type PieceKind = 'worker' | 'ingest' | 'api' | 'publisher';
/** A piece by its kind, or a second, third... of a kind: `worker-2`. */
export type PieceName = PieceKind | `${PieceKind}-${number}`;
export type BrokerKind = 'aedes' | 'mosquitto';
export type TemporalKind = 'dev' | 'postgres';

const kindOf = (name: PieceName) => name.split('-')[0] as PieceKind;

const scripts: Record<PieceKind, string> = {
  worker: 'workers/fleet-worker.ts',
  ingest: 'workers/ingest.ts',
  api: 'workers/api.ts',
  publisher: 'workers/event-publisher.ts',
};
// The publisher serves nothing to poll: it is ready once it says it publishes (at info level).
const PUBLISHING = 'publishing domain events to RabbitMQ';

type Piece = { child: ChildProcess; output: () => string; expectedExit: boolean };

export type ProcessStack = {
  dir: string;
  databaseUrl: string;
  mqttUrl: string;
  /** The first API's (`api`); `api-2`... listen on ports of their own. */
  apiUrl: string;
  apiKey: string;
  /** The first ingest worker's (`ingest`). */
  ingestMetricsUrl: string;
  /** Every ingest worker's name and /metrics URL. */
  ingestMetricsUrls(): [PieceName, string][];
  /** The pieces started with the stack, in order. */
  pieces: PieceName[];
  broker: BrokerKind;
  temporalKind: TemporalKind;
  prisma: Prisma;
  temporal: Client;
  greengrass: LocalGreengrass;
  pid(name: PieceName): number;
  /** SIGKILL (or another signal) to a piece; resolves once it has exited. */
  kill(name: PieceName, signal?: NodeJS.Signals): Promise<void>;
  /** Starts a piece again; resolves once it serves (worker: polls its task queue; ingest and API: answer HTTP). */
  start(name: PieceName): Promise<void>;
  /** SIGSTOP / SIGCONT: the piece hangs, as a process under memory pressure or in a debugger does. */
  pause(name: PieceName): void;
  resume(name: PieceName): void;
  stopTemporal(): Promise<void>;
  /** `kill -9` of the Temporal server. */
  killTemporal(): Promise<void>;
  /** The server again, on the same port and database (file or PostgreSQL). */
  startTemporal(): Promise<void>;
  stopPostgres(): Promise<void>;
  startPostgres(): Promise<void>;
  stopBroker(): Promise<void>;
  /** The broker again on the same port (Mosquitto: and its persistence file). */
  startBroker(): Promise<void>;
  /** Resident memory of a piece in MiB, from /proc. */
  rssMb(name: PieceName): number;
  /** Pieces and servers that exited without being told to, with the end of their output. */
  crashed(): string[];
  /** Their names, to start them again: pieces, `broker`, `temporal`. */
  crashedNames(): (PieceName | 'broker' | 'temporal')[];
  output(name: PieceName): string;
  /** GET with the all-scopes key. */
  api(path: string): Promise<{ status: number; body: any; headers: Headers }>;
  request(method: string, path: string, body?: unknown): Promise<{ status: number; body: any; headers: Headers }>;
  stop(): Promise<void>;
};

export type ProcessStackOptions = {
  broker?: BrokerKind;
  /** The CLI's dev server on a database file (default), or a Temporal server on the stack's PostgreSQL. */
  temporal?: TemporalKind;
  /** Workflow worker processes: `worker`, `worker-2`, ... (default 1). */
  workers?: number;
  /** Ingest worker processes: `ingest`, `ingest-2`, ... (default 1); with MQTT they share the broker's messages (Mosquitto). */
  ingests?: number;
  /** MQTT (default) or SQS: a local SQS-compatible server fed by a stand-in for the AWS IoT Rule. */
  source?: 'mqtt' | 'sqs';
  /**
   * The pieces to start, instead of `workers` workflow workers, `ingest` and `api`; each `api-N` and
   * `ingest-N` gets ports of its own. `publisher` needs AMQP_URL in the environment.
   */
  pieces?: PieceName[];
  env?: Record<string, string>;
  greengrassStepMs?: number;
};

export { findMosquitto };

export async function startProcessStack(opts: ProcessStackOptions = {}): Promise<ProcessStack> {
  const broker = opts.broker ?? 'aedes';
  const temporalKind = opts.temporal ?? 'dev';
  const dir = resolve(repoRoot, '.data', `faults-${process.pid}-${randomUUID().slice(0, 8)}`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const [pgPort, temporalPort, uiPort, mqttPort, sqsPort] = await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort()]);
  const source = opts.source ?? 'mqtt';
  const workers = Array.from({ length: opts.workers ?? 1 }, (_, i): PieceName => (i === 0 ? 'worker' : `worker-${i + 1}`));
  const ingestPieces = Array.from({ length: opts.ingests ?? 1 }, (_, i): PieceName => (i === 0 ? 'ingest' : `ingest-${i + 1}`));
  const started: PieceName[] = opts.pieces ?? [...workers, ...ingestPieces, 'api'];
  const ingests = started.filter((name) => kindOf(name) === 'ingest').length;
  const temporalDb = join(dir, 'temporal.db');
  const pgDir = join(dir, 'postgres');
  const mqttUrl = `mqtt://127.0.0.1:${mqttPort}`;
  const apiKey = `faults-${randomUUID()}`;

  let postgres: RunningPostgres | null = null;
  let temporalServer: RunningTemporal | null = null;
  let brokerProcess: Piece | null = null;
  const pieces = new Map<PieceName, Piece>();
  const cleanups: (() => Promise<unknown>)[] = [];

  const startPostgres = async () => {
    postgres = await startEmbeddedPostgres({ dataDir: pgDir, port: pgPort });
  };
  const startTemporal = async () => {
    temporalServer =
      temporalKind === 'postgres'
        ? await startTemporalOnPostgres({ adminUrl: postgres!.adminUrl, port: temporalPort, uiPort, dataDir: dir })
        : await startTemporalDevServer({ port: temporalPort, dbFile: temporalDb, fast: true });
  };
  const startBroker = async () => {
    brokerProcess = broker === 'mosquitto' ? spawnMosquitto(dir, mqttPort) : spawnPiece('infra/mqtt-broker.ts', { ...process.env, MQTT_PORT: String(mqttPort) } as Record<string, string>);
    await waitFor(`the ${broker} broker`, brokerProcess, () => portOpen(mqttPort), 30_000);
  };
  const stopBroker = async () => {
    if (brokerProcess) await stopPiece(brokerProcess, 'SIGTERM');
    brokerProcess = null;
  };

  try {
    // A Temporal server on PostgreSQL needs PostgreSQL first.
    await Promise.all([temporalKind === 'postgres' ? startPostgres().then(startTemporal) : Promise.all([startPostgres(), startTemporal()]), startBroker()]);
    await applyMigrations(postgres!.url);
    const databaseUrl = postgres!.url;
    const prisma = createPrisma(databaseUrl, 4);
    cleanups.push(() => prisma.$disconnect());
    // It stands for AWS, which stays up while our PostgreSQL is down: it keeps the last list it read.
    let things: string[] = [];
    const greengrass = await startLocalGreengrass({
      stepMs: opts.greengrassStepMs ?? 300,
      knownThings: async () => (things = await prisma.device.findMany({ select: { serialNumber: true } }).then((rows) => rows.map((d) => d.serialNumber), () => things)),
    });
    cleanups.push(() => greengrass.stop());
    const connection = await Connection.connect({ address: `127.0.0.1:${temporalPort}` });
    cleanups.push(() => connection.close());
    const temporal = new Client({ connection });

    let sqs: { queue: LocalSqs; bridge: IotRuleBridge } | null = null;
    if (source === 'sqs') {
      const queue = await startLocalSqs({ port: sqsPort });
      cleanups.push(() => queue.stop());
      const client = createSqsClient({ region: 'us-east-1', endpoint: queue.endpoint });
      const bridge = await startIotRuleBridge({ mqttUrl, sqs: client, queueUrl: queue.queueUrl });
      cleanups.push(async () => (await bridge.close(), client.destroy()));
      sqs = { queue, bridge };
    }
    const env: Record<string, string> = {
      ...(process.env as Record<string, string>),
      ...(sqs ? { INGEST_SOURCE: 'sqs', SQS_HEARTBEAT_QUEUE_URL: sqs.queue.queueUrl, SQS_ENDPOINT: sqs.queue.endpoint } : {}),
      // Several ingest workers split the broker's messages as one shared-subscription group (aedes has none).
      ...(ingests > 1 && broker === 'mosquitto' ? { MQTT_SHARE_GROUP: 'fleet-ingest' } : {}),
      DATABASE_URL: databaseUrl,
      TEMPORAL_ADDRESS: `127.0.0.1:${temporalPort}`,
      MQTT_URL: mqttUrl,
      API_KEYS: `${apiKey}:read,operate,deploy`,
      GREENGRASS_ENDPOINT: greengrass.url,
      AWS_REGION: greengrass.region,
      AWS_ACCESS_KEY_ID: 'local',
      AWS_SECRET_ACCESS_KEY: 'local',
      LOG_LEVEL: 'warn',
      ...opts.env,
    };
    // Each API and ingest worker keeps its port across restarts.
    const ports = new Map<PieceName, number>();
    const portOf = async (name: PieceName) => ports.get(name) ?? ports.set(name, await freePort()).get(name)!;
    const apiUrlOf = async (name: PieceName) => `http://127.0.0.1:${await portOf(name)}`;
    const metricsUrlOf = async (name: PieceName) => `http://127.0.0.1:${await portOf(name)}/`;
    const apiUrl = await apiUrlOf('api');
    const ingestMetricsUrl = await metricsUrlOf('ingest');

    /** The n-th of a kind (1 for `ingest`, 2 for `ingest-2`). */
    const nth = (name: PieceName) => Number(name.split('-')[1] ?? 1);
    const ready: Record<PieceKind, (name: PieceName, piece: Piece) => Promise<boolean>> = {
      worker: async (_, piece) => hasPoller(temporal, piece.child.pid!),
      ingest: async (name) => responds(await metricsUrlOf(name)),
      api: async (name) => responds(`${await apiUrlOf(name)}/healthz`),
      publisher: async (_, piece) => piece.output().includes(PUBLISHING),
    };
    // Each ingest worker keeps its own MQTT session, the same across its restarts.
    const envOf = async (name: PieceName): Promise<Record<string, string>> => {
      const kind = kindOf(name);
      if (kind === 'api') return { ...env, PORT: String(await portOf(name)) };
      if (kind === 'ingest') return { ...env, INGEST_METRICS_PORT: String(await portOf(name)), ...(nth(name) > 1 ? { MQTT_CLIENT_ID: `fleet-ingest-${nth(name)}` } : {}) };
      if (kind === 'publisher') return { ...env, LOG_LEVEL: 'info' };
      return env;
    };
    const start = async (name: PieceName) => {
      const piece = spawnPiece(scripts[kindOf(name)], await envOf(name));
      pieces.set(name, piece);
      // A cold start bundles the workflow code: slow on a busy 2-core machine.
      await waitFor(name, piece, () => ready[kindOf(name)](name, piece), 180_000).catch(async (error) => {
        // Told so by the error: a piece that did not come up is not also a crash.
        await stopPiece(piece, 'SIGKILL');
        throw error;
      });
    };
    const piece = (name: PieceName) => {
      const p = pieces.get(name);
      if (!p) throw new Error(`${name} was never started`);
      return p;
    };
    const call = async (method: string, path: string, body?: unknown) => {
      const res = await fetch(`${apiUrl}${path}`, {
        method,
        headers: { 'x-api-key': apiKey, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(15_000),
      });
      const text = await res.text();
      let parsed: unknown = text;
      try {
        parsed = text ? JSON.parse(text) : undefined;
      } catch {
        // not JSON: kept as text
      }
      return { status: res.status, body: parsed as any, headers: res.headers };
    };

    await Promise.all(started.map(start));

    return {
      dir,
      databaseUrl,
      mqttUrl,
      apiUrl,
      apiKey,
      ingestMetricsUrl,
      ingestMetricsUrls: () => started.filter((name) => kindOf(name) === 'ingest').map((name) => [name, `http://127.0.0.1:${ports.get(name)}/`] as [PieceName, string]),
      pieces: started,
      broker,
      temporalKind,
      prisma,
      temporal,
      greengrass,
      pid: (name) => piece(name).child.pid!,
      kill: (name, signal = 'SIGKILL') => stopPiece(piece(name), signal),
      start,
      pause: (name) => void piece(name).child.kill('SIGSTOP'),
      resume: (name) => void piece(name).child.kill('SIGCONT'),
      stopTemporal: async () => {
        await temporalServer?.stop();
        temporalServer = null;
      },
      killTemporal: async () => {
        const child = temporalServer?.process;
        temporalServer = null;
        if (!child || child.exitCode !== null) return;
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGKILL');
        await exited;
      },
      startTemporal,
      stopPostgres: async () => {
        await postgres?.stop();
        postgres = null;
      },
      startPostgres,
      stopBroker,
      startBroker,
      rssMb: (name) => rssMb(piece(name).child.pid!),
      crashed: () => [
        ...[...pieces].filter(([, p]) => !p.expectedExit && exited(p.child)).map(([n, p]) => `${n} exited (${howExited(p.child)}): ${p.output().slice(-2000)}`),
        ...(brokerProcess && exited(brokerProcess.child) ? [`the ${broker} broker exited (${howExited(brokerProcess.child)}): ${brokerProcess.output().slice(-2000)}`] : []),
        ...(temporalServer && exited(temporalServer.process) ? [`the Temporal server exited (${howExited(temporalServer.process)})`] : []),
      ],
      crashedNames: () => [
        ...[...pieces].filter(([, p]) => !p.expectedExit && exited(p.child)).map(([n]) => n),
        ...(brokerProcess && exited(brokerProcess.child) ? (['broker'] as const) : []),
        ...(temporalServer && exited(temporalServer.process) ? (['temporal'] as const) : []),
      ],
      output: (name) => piece(name).output(),
      api: (path) => call('GET', path),
      request: call,
      stop: async () => {
        for (const p of pieces.values()) await stopPiece(p, 'SIGTERM');
        for (const c of cleanups.reverse()) await c().catch(() => undefined);
        await stopBroker();
        await temporalServer?.stop();
        await postgres?.stop();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    for (const p of pieces.values()) await stopPiece(p, 'SIGKILL');
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
    await stopBroker();
    await (temporalServer as RunningTemporal | null)?.stop();
    await (postgres as RunningPostgres | null)?.stop();
    throw error;
  }
}

function spawnPiece(script: string, env: Record<string, string>): Piece {
  const child = spawn(process.execPath, ['--import', 'tsx', script], { cwd: repoRoot, env, stdio: ['ignore', 'pipe', 'pipe'] });
  return track(child);
}

function track(child: ChildProcess): Piece {
  let output = '';
  const keep = (chunk: Buffer) => (output = (output + chunk.toString()).slice(-20_000));
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  return { child, output: () => output, expectedExit: false };
}

/** Mosquitto with the settings of infra/mosquitto.ts, its persistence in the stack's folder. */
function spawnMosquitto(dir: string, port: number): Piece {
  const binary = findMosquitto();
  if (!binary) throw new Error('mosquitto is not installed: run scripts/mosquitto.sh');
  const data = join(dir, 'mosquitto');
  mkdirSync(data, { recursive: true });
  const conf = join(dir, 'mosquitto.conf');
  writeFileSync(conf, mosquittoConf({ port, dataDir: data }));
  return track(spawn(binary, ['-c', conf], { stdio: ['ignore', 'pipe', 'pipe'] }));
}

const exited = (child: ChildProcess) => child.exitCode !== null || child.signalCode !== null;
const howExited = (child: ChildProcess) => child.signalCode ?? child.exitCode;

async function stopPiece(piece: Piece, signal: NodeJS.Signals): Promise<void> {
  piece.expectedExit = true;
  const { child } = piece;
  if (exited(child)) return;
  const gone = new Promise((r) => child.once('exit', r));
  child.kill('SIGCONT'); // a paused piece cannot act on SIGTERM
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
  await gone;
  clearTimeout(timer);
}

async function waitFor(name: string, piece: Piece, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (exited(piece.child)) throw new Error(`${name} exited (${howExited(piece.child)}): ${piece.output().slice(-3000)}`);
    if (await check().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${name} not ready after ${timeoutMs} ms: ${piece.output().slice(-3000)}`);
}

/** The worker polls once a poller with its identity (the SDK's default, `<pid>@<host>`) is listed. */
async function hasPoller(temporal: Client, pid: number): Promise<boolean> {
  const res = await temporal.workflowService.describeTaskQueue({
    namespace: 'default',
    taskQueue: { name: taskQueues.fleet },
    taskQueueType: proto.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
  });
  return (res.pollers ?? []).some((p) => p.identity?.startsWith(`${pid}@`));
}

async function responds(url: string): Promise<boolean> {
  return (await fetch(url, { signal: AbortSignal.timeout(1000) })).ok;
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ port, host: '127.0.0.1' }, () => {
      socket.end();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

function rssMb(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : 0;
}
