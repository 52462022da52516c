import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { setPriority } from 'node:os';
import { join, resolve } from 'node:path';
import { connect as connectAmqp } from 'amqplib';
import { Connection } from '@temporalio/client';
import { temporal as proto } from '@temporalio/proto';
import { applyMigrations } from '../infra/migrate';
import { startMosquitto } from '../infra/mosquitto';
import { startEmbeddedPostgres } from '../infra/postgres';
import { startLocalSqs } from '../infra/sqs-local';
import { startTemporalOnPostgres } from '../infra/temporal-postgres';
import { niced, startTemporalDevServer, type RunningTemporal } from '../infra/temporal-server';
import { heartbeatExchangeName } from '../ingest/heartbeat-events';
import { exchangeName } from '../outbox/messages';
import { taskQueues } from '../temporal.config';
import { freePort } from '../infra/ports';
import { listeningPorts, pidListeningOn } from './proc';

/**
 * A fresh stack for one benchmark run, every piece its own process so that CPU and memory are
 * measured per piece: PostgreSQL and the Temporal server (new data folders each time; the dev
 * server on SQLite, or a Temporal server on that PostgreSQL), the MQTT broker (aedes or Mosquitto),
 * and the project's own entry points (workers/fleet-worker.ts, workers/ingest.ts, workers/api.ts,
 * as many of the first two as asked). With SQS, a local SQS-compatible server and the stand-in for
 * the AWS IoT Rule (bench/iot-rule-bridge.ts) stand between the broker and the ingest; with
 * RabbitMQ, the machine's node (scripts/rabbitmq.sh) and the outbox publisher
 * (workers/event-publisher.ts) join. The floor mode has no Temporal server and no robot worker.
 */

export const repoRoot = resolve(__dirname, '..');

/** (a) the project as designed; (b) and (c) the yardsticks of bench/ingest-yardstick.ts. */
export const ingestModes = ['designed', 'naive', 'floor'] as const;
export type IngestMode = (typeof ingestModes)[number];

export const heartbeatSources = ['mqtt', 'sqs'] as const;
export type HeartbeatSource = (typeof heartbeatSources)[number];
export const brokers = ['aedes', 'mosquitto'] as const;
export type Broker = (typeof brokers)[number];
export const temporalServers = ['dev', 'postgres'] as const;
export type TemporalServer = (typeof temporalServers)[number];

/** Names of the pieces the benchmark samples: the first of a kind keeps its plain name, as in earlier results. */
export const nth = (name: string, i: number) => (i === 0 ? name : `${name} ${i + 1}`);

export type Stack = {
  mode: IngestMode;
  databaseUrl: string;
  temporalAddress: string | null;
  /** The Temporal server's Prometheus endpoint (null if none was found). */
  temporalMetricsUrl: string | null;
  mqttUrl: string;
  apiUrl: string;
  apiKey: string;
  /** Each ingest worker's metrics, the first one's first: counters are summed over all of them. */
  ingestMetricsUrls: string[];
  /** RabbitMQ and the run's EVENTS_ENV, when it is on. */
  amqp: { url: string; env: string; heartbeatExchange: string } | null;
  pids: Record<string, number>;
  /** Pieces that exited on their own, with the end of their output. */
  crashed(): string[];
  /** The end of a piece's output (stdout and stderr). */
  output(name: string): string;
  stop(): Promise<void>;
};

/** Stacks running now, so that an interrupted benchmark can stop what it started. */
export const runningStacks = new Set<Stack>();

export type StackOptions = {
  mode: IngestMode;
  dir: string;
  offlineAfterSeconds: number;
  env?: Record<string, string>;
  /** CPU niceness of the Temporal server and the robot worker (0: none); docs/performance.md says why. */
  temporalNice?: number;
  /** GOGC of the Temporal server (unset: Go's default, 100). */
  temporalGogc?: number;
  /** Where the ingest takes heartbeats from (default mqtt). */
  source?: HeartbeatSource;
  broker?: Broker;
  /** Ingest worker processes (default 1): a Mosquitto shared-subscription group, or the one SQS queue. */
  ingestWorkers?: number;
  /** RabbitMQ's AMQP_URL: heartbeat events on, and the outbox publisher (default off). */
  amqpUrl?: string;
  temporal?: TemporalServer;
  /** Robot worker processes on the task queue (default 1). */
  workers?: number;
};

/** What the stack sets itself: a value from the caller's environment would change what is measured. */
const OWN_VARIABLES = ['INGEST_SOURCE', 'SQS_HEARTBEAT_QUEUE_URL', 'SQS_ENDPOINT', 'MQTT_SHARE_GROUP', 'MQTT_CLIENT_ID', 'AMQP_URL', 'EVENTS_ENV', 'TEMPORAL_SERVER', 'TEMPORAL_ADDRESS', 'TEMPORAL_NAMESPACE'];

/** The option combinations a stack cannot run, as a sentence for the command line. */
export function stackProblem(opts: Pick<StackOptions, 'mode' | 'source' | 'broker' | 'ingestWorkers' | 'amqpUrl'>): string | null {
  const workers = opts.ingestWorkers ?? 1;
  if (workers > 1 && (opts.source ?? 'mqtt') === 'mqtt' && (opts.broker ?? 'aedes') === 'aedes') return '--ingest-workers over 1 with MQTT needs --broker mosquitto: aedes has no shared subscriptions';
  if (opts.mode !== 'designed' && ((opts.source ?? 'mqtt') !== 'mqtt' || workers > 1 || opts.amqpUrl)) return '--source sqs, --ingest-workers and --amqp measure the designed ingest: use --modes a';
  return null;
}

type Piece = { name: string; child: ChildProcess; output: () => string; stopping: boolean };

export async function startStack(opts: StackOptions): Promise<Stack> {
  const problem = stackProblem(opts);
  if (problem) throw new Error(problem);
  rmSync(opts.dir, { recursive: true, force: true });
  mkdirSync(opts.dir, { recursive: true });
  const source = opts.source ?? 'mqtt';
  const brokerKind = opts.broker ?? 'aedes';
  const temporalKind = opts.temporal ?? 'dev';
  const ingestCount = opts.ingestWorkers ?? 1;
  const workerCount = opts.workers ?? 1;
  const pieces: Piece[] = [];
  const stops: (() => Promise<unknown>)[] = [];
  let stack: Stack | null = null;
  const stop = async () => {
    if (stack) runningStacks.delete(stack);
    for (const piece of [...pieces].reverse()) await stopChild(piece);
    for (const s of stops.reverse()) await s().catch(() => undefined);
    rmSync(opts.dir, { recursive: true, force: true });
  };
  try {
    const [pgPort, temporalPort, temporalUiPort, temporalMetricsPort, mqttPort, apiPort, sqsPort] = await Promise.all(Array.from({ length: 7 }, () => freePort()));
    const metricsPorts = await Promise.all(Array.from({ length: ingestCount }, () => freePort()));
    const withTemporal = opts.mode !== 'floor';
    const postgresStarted = startEmbeddedPostgres({ dataDir: join(opts.dir, 'postgres'), port: pgPort });
    const [postgres, temporal] = await Promise.all([
      postgresStarted,
      !withTemporal
        ? Promise.resolve(null)
        : temporalKind === 'postgres'
          ? postgresStarted.then((pg) => startTemporalServerOnPostgres(pg.adminUrl, { port: temporalPort, uiPort: temporalUiPort, metricsPort: temporalMetricsPort, dataDir: join(opts.dir, 'temporal'), nice: opts.temporalNice, gogc: opts.temporalGogc }))
          : startTemporalDevServer({ port: temporalPort, dbFile: join(opts.dir, 'temporal.db'), fast: true, nice: opts.temporalNice, gogc: opts.temporalGogc }),
    ]);
    stops.push(postgres.stop);
    if (temporal) stops.push(temporal.stop);
    await applyMigrations(postgres.url);
    const postmasterPid = Number(readFileSync(join(opts.dir, 'postgres', 'postmaster.pid'), 'utf8').split('\n')[0]);
    const temporalMetricsUrl = !temporal ? null : temporalKind === 'postgres' ? `http://127.0.0.1:${temporalMetricsPort}/metrics` : await findMetricsUrl(temporal.process.pid!, temporalPort);

    const apiKey = `bench-${process.pid}`;
    const mqttUrl = `mqtt://127.0.0.1:${mqttPort}`;
    const inherited = { ...(process.env as Record<string, string>) };
    for (const name of OWN_VARIABLES) delete inherited[name];
    const amqp = opts.amqpUrl ? amqpOf(opts.amqpUrl) : null;
    if (amqp) stops.push(() => deleteExchanges(amqp.url, [amqp.heartbeatExchange, exchangeName(amqp.env)]));
    const env: Record<string, string> = {
      ...inherited,
      DATABASE_URL: postgres.url,
      MQTT_URL: mqttUrl,
      MQTT_PORT: String(mqttPort),
      PORT: String(apiPort),
      API_KEYS: `${apiKey}:read`,
      OFFLINE_AFTER_SECONDS: String(opts.offlineAfterSeconds),
      INGEST_METRICS_PORT: String(metricsPorts[0]),
      LOG_LEVEL: 'error',
      ...(temporal ? { TEMPORAL_ADDRESS: temporal.address } : {}),
      ...(amqp ? { AMQP_URL: amqp.url, EVENTS_ENV: amqp.env } : {}),
      ...opts.env,
    };
    const node = (name: string, script: string, nice?: number, args: string[] = [], pieceEnv = env) => {
      const piece = spawnNode(name, script, pieceEnv, nice, args);
      pieces.push(piece);
      return piece;
    };
    const pids: Record<string, number> = { postgres: postmasterPid };
    if (temporal) pids['temporal server'] = temporal.process.pid!;
    if (brokerKind === 'mosquitto') {
      const mosquitto = await startMosquitto({ port: mqttPort, dir: join(opts.dir, 'mqtt') });
      stops.push(() => mosquitto.stop());
      pids['mqtt broker'] = mosquitto.process.pid!;
    } else {
      const broker = node('mqtt broker', 'infra/mqtt-broker.ts');
      await until(() => broker.output().includes('MQTT broker on'), broker, 30_000);
      pids['mqtt broker'] = broker.child.pid!;
    }
    if (source === 'sqs') {
      const queue = await startLocalSqs({ port: sqsPort });
      stops.push(() => queue.stop());
      pids['sqs server'] = queue.process.pid!;
      Object.assign(env, { INGEST_SOURCE: 'sqs', SQS_HEARTBEAT_QUEUE_URL: queue.queueUrl, SQS_ENDPOINT: queue.endpoint });
      // Before any robot publishes: the bridge's persistent session is what the IoT Rule's subscription is.
      const bridge = node('iot rule bridge', 'bench/iot-rule-bridge.ts');
      await until(() => bridge.output().includes('IoT Rule bridge on'), bridge, 60_000);
      pids['iot rule bridge'] = bridge.child.pid!;
    }
    // Several ingest workers split the broker's messages as one shared-subscription group (aedes has none).
    if (ingestCount > 1 && brokerKind === 'mosquitto') env.MQTT_SHARE_GROUP = 'fleet-ingest';
    const workers = temporal ? Array.from({ length: workerCount }, (_, i) => node(nth('robot worker', i), 'workers/fleet-worker.ts', opts.temporalNice)) : [];
    // Each ingest worker its own MQTT session (the first keeps the default client id) and metrics port.
    const ingestEnv = (i: number) => (i === 0 ? env : { ...env, MQTT_CLIENT_ID: `fleet-ingest-w${i + 1}`, INGEST_METRICS_PORT: String(metricsPorts[i]) });
    const ingests = Array.from({ length: ingestCount }, (_, i) =>
      opts.mode === 'designed' ? node(nth('ingest worker', i), 'workers/ingest.ts', undefined, [], ingestEnv(i)) : node('ingest worker', 'bench/ingest-yardstick.ts', undefined, [opts.mode]),
    );
    const publisher = amqp ? node('event publisher', 'workers/event-publisher.ts') : null;
    const api = node('api', temporal ? 'workers/api.ts' : 'bench/api-without-temporal.ts');
    if (temporal) await untilAsync(() => hasPollers(temporal.address, workers.length), workers, 180_000);
    await Promise.all(ingests.map((ingest, i) => untilAsync(() => responds(`http://127.0.0.1:${metricsPorts[i]}/`), ingest, 60_000)));
    await untilAsync(() => responds(`http://127.0.0.1:${apiPort}/healthz`), api, 60_000);
    if (publisher && publisher.child.exitCode !== null) throw new Error(`event publisher exited (${publisher.child.exitCode}): ${publisher.output().slice(-1500)}`);

    workers.forEach((w, i) => (pids[nth('robot worker', i)] = w.child.pid!));
    ingests.forEach((w, i) => (pids[nth('ingest worker', i)] = w.child.pid!));
    pids.api = api.child.pid!;
    if (publisher) pids['event publisher'] = publisher.child.pid!;
    // The machine's RabbitMQ node, shared with anything else that uses it: its CPU counts whatever it serves.
    const rabbit = amqp ? pidListeningOn(amqp.port) : null;
    if (amqp && rabbit === null) throw new Error(`no process found listening on RabbitMQ's port ${amqp.port}`);
    if (rabbit !== null) pids.rabbitmq = rabbit;
    stack = {
      mode: opts.mode,
      databaseUrl: postgres.url,
      temporalAddress: temporal?.address ?? null,
      temporalMetricsUrl,
      mqttUrl,
      apiUrl: `http://127.0.0.1:${apiPort}`,
      apiKey,
      ingestMetricsUrls: metricsPorts.map((port) => `http://127.0.0.1:${port}/`),
      amqp: amqp ? { url: amqp.url, env: amqp.env, heartbeatExchange: amqp.heartbeatExchange } : null,
      pids,
      output: (name) => pieces.find((p) => p.name === name)?.output() ?? '',
      crashed: () => pieces.filter((p) => p.child.exitCode !== null && !p.stopping).map((p) => `${p.name} exited (${p.child.exitCode}): ${lastError(p.output())}`),
      stop,
    };
    runningStacks.add(stack);
    return stack;
  } catch (error) {
    const crashed = pieces.filter((p) => p.child.exitCode !== null).map((p) => `${p.name}: ${p.output().slice(-1500)}`);
    await stop();
    throw new Error(`${(error as Error).message}${crashed.length ? `\n${crashed.join('\n')}` : ''}`, { cause: error });
  }
}

/**
 * infra/temporal-postgres.ts with the benchmark's measuring settings: a Prometheus endpoint and GOGC
 * through the environment it hands the server, and the dev server's niceness given to every thread.
 */
async function startTemporalServerOnPostgres(
  adminUrl: string,
  opts: { port: number; uiPort: number; metricsPort: number; dataDir: string; nice?: number; gogc?: number },
): Promise<RunningTemporal> {
  const saved = { TEMPORAL_METRICS_PORT: process.env.TEMPORAL_METRICS_PORT, GOGC: process.env.GOGC };
  process.env.TEMPORAL_METRICS_PORT = String(opts.metricsPort);
  if (opts.gogc) process.env.GOGC = String(opts.gogc);
  let started: Promise<RunningTemporal>;
  try {
    // The server's environment is read before the call's first await.
    started = startTemporalOnPostgres({ adminUrl, port: opts.port, uiPort: opts.uiPort, dataDir: opts.dataDir });
  } finally {
    for (const [name, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  }
  const temporal = await started;
  // Threads take the niceness of the thread that starts them: setting every thread's covers the ones to come.
  if (opts.nice) for (const task of readdirSync(`/proc/${temporal.process.pid}/task`)) setPriority(Number(task), opts.nice);
  return temporal;
}

/** The dev server serves /metrics on a port of its own choosing: the one of its listening ports that answers like Prometheus. */
async function findMetricsUrl(pid: number, grpcPort: number): Promise<string | null> {
  for (let attempt = 0; attempt < 20; attempt++) {
    for (const port of listeningPorts(pid).filter((p) => p !== grpcPort)) {
      const text = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(1000) })
        .then((r) => (r.ok ? r.text() : ''))
        .catch(() => '');
      if (text.startsWith('# HELP')) return `http://127.0.0.1:${port}/metrics`;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  return null;
}

/** A run's own EVENTS_ENV, so that its exchanges mix with no other run's on the shared node. */
function amqpOf(url: string): { url: string; env: string; port: number; heartbeatExchange: string } {
  const env = `bench-${process.pid}-${randomBytes(3).toString('hex')}`;
  return { url, env, port: Number(new URL(url).port || 5672), heartbeatExchange: heartbeatExchangeName(env) };
}

/** The run's exchanges are durable: removed at the end, the node is left as it was found. */
async function deleteExchanges(url: string, exchanges: string[]): Promise<void> {
  const connection = await connectAmqp(url);
  try {
    const channel = await connection.createChannel();
    for (const exchange of exchanges) await channel.deleteExchange(exchange);
  } finally {
    await connection.close();
  }
}

/** The line naming the error in a crashed piece's output, for a one-line report. */
function lastError(output: string): string {
  const lines = output.split('\n').filter((l) => /Error|error/.test(l) && !/^\s+at /.test(l));
  return (lines[lines.length - 1] ?? output.trim().split('\n').pop() ?? '').trim().slice(0, 200);
}

function spawnNode(name: string, script: string, env: Record<string, string>, nice?: number, scriptArgs: string[] = []): Piece {
  const args = ['--import', 'tsx', script, ...scriptArgs];
  const [command, commandArgs] = niced(process.execPath, args, nice);
  const child = spawn(command, commandArgs, { cwd: repoRoot, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const keep = (chunk: Buffer) => (output = (output + chunk.toString()).slice(-8000));
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  return { name, child, output: () => output, stopping: false };
}

async function stopChild(piece: Piece): Promise<void> {
  piece.stopping = true;
  const { child } = piece;
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

/** Until `count` workers poll the fleet task queue's workflow tasks. */
async function hasPollers(address: string, count: number): Promise<boolean> {
  const connection = await Connection.connect({ address, connectTimeout: 1000 });
  try {
    const res = await connection.workflowService.describeTaskQueue({
      namespace: 'default',
      taskQueue: { name: taskQueues.fleet },
      taskQueueType: proto.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
    });
    return new Set(res.pollers?.map((p) => p.identity)).size >= count;
  } finally {
    await connection.close();
  }
}

async function responds(url: string): Promise<boolean> {
  return (await fetch(url, { signal: AbortSignal.timeout(1000) })).ok;
}

async function until(check: () => boolean, piece: Piece, timeoutMs: number): Promise<void> {
  await untilAsync(async () => check(), piece, timeoutMs);
}

/** Until `check` holds; fails at once when one of the pieces it waits for exits. */
async function untilAsync(check: () => Promise<boolean>, waitingFor: Piece | Piece[], timeoutMs: number): Promise<void> {
  const pieces = Array.isArray(waitingFor) ? waitingFor : [waitingFor];
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const exited = pieces.find((p) => p.child.exitCode !== null);
    if (exited) throw new Error(`${exited.name} exited (${exited.child.exitCode}): ${exited.output().slice(-1500)}`);
    if (await check().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${pieces.map((p) => p.name).join(', ')} not ready after ${timeoutMs} ms: ${pieces[0].output().slice(-1500)}`);
}
