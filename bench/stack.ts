import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Connection } from '@temporalio/client';
import { temporal as proto } from '@temporalio/proto';
import { applyMigrations } from '../infra/migrate';
import { startEmbeddedPostgres } from '../infra/postgres';
import { niced, startTemporalDevServer } from '../infra/temporal-server';
import { taskQueues } from '../temporal.config';
import { freePort } from '../test/support/ports';

/**
 * A fresh stack for one benchmark run, every piece its own process so that CPU and memory are
 * measured per piece: PostgreSQL and the Temporal dev server (new data folders each time), the
 * MQTT broker, and the project's own entry points (workers/fleet-worker.ts, workers/ingest.ts,
 * workers/api.ts). The floor mode has no Temporal server and no robot worker.
 */

export const repoRoot = resolve(__dirname, '..');

/** (a) the project as designed; (b) and (c) the yardsticks of bench/ingest-yardstick.ts. */
export const ingestModes = ['designed', 'naive', 'floor'] as const;
export type IngestMode = (typeof ingestModes)[number];

export type Stack = {
  mode: IngestMode;
  databaseUrl: string;
  temporalAddress: string | null;
  mqttUrl: string;
  apiUrl: string;
  apiKey: string;
  ingestMetricsUrl: string;
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
  /** CPU niceness of the Temporal server and the robot worker (0: none); the README's Performance section says why. */
  temporalNice?: number;
  /** GOGC of the Temporal dev server (unset: Go's default, 100). */
  temporalGogc?: number;
};

type Piece = { name: string; child: ChildProcess; output: () => string; stopping: boolean };

export async function startStack(opts: StackOptions): Promise<Stack> {
  rmSync(opts.dir, { recursive: true, force: true });
  mkdirSync(opts.dir, { recursive: true });
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
    const [pgPort, temporalPort, mqttPort, apiPort, metricsPort] = await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort()]);
    const withTemporal = opts.mode !== 'floor';
    const [postgres, temporal] = await Promise.all([
      startEmbeddedPostgres({ dataDir: join(opts.dir, 'postgres'), port: pgPort }),
      withTemporal
        ? startTemporalDevServer({ port: temporalPort, dbFile: join(opts.dir, 'temporal.db'), fast: true, nice: opts.temporalNice, gogc: opts.temporalGogc })
        : Promise.resolve(null),
    ]);
    stops.push(postgres.stop);
    if (temporal) stops.push(temporal.stop);
    await applyMigrations(postgres.url);
    const postmasterPid = Number(readFileSync(join(opts.dir, 'postgres', 'postmaster.pid'), 'utf8').split('\n')[0]);

    const apiKey = `bench-${process.pid}`;
    const mqttUrl = `mqtt://127.0.0.1:${mqttPort}`;
    const env: Record<string, string> = {
      ...(process.env as Record<string, string>),
      DATABASE_URL: postgres.url,
      MQTT_URL: mqttUrl,
      MQTT_PORT: String(mqttPort),
      PORT: String(apiPort),
      API_KEYS: `${apiKey}:read`,
      OFFLINE_AFTER_SECONDS: String(opts.offlineAfterSeconds),
      INGEST_METRICS_PORT: String(metricsPort),
      LOG_LEVEL: 'error',
      ...(temporal ? { TEMPORAL_ADDRESS: temporal.address } : {}),
      ...opts.env,
    };
    if (!temporal) delete env.TEMPORAL_ADDRESS;
    const node = (name: string, script: string, nice?: number, args: string[] = []) => {
      const piece = spawnNode(name, script, env, nice, args);
      pieces.push(piece);
      return piece;
    };
    const broker = node('mqtt broker', 'infra/mqtt-broker.ts');
    await until(() => broker.output().includes('MQTT broker on'), broker, 30_000);
    const worker = temporal ? node('robot worker', 'workers/fleet-worker.ts', opts.temporalNice) : null;
    const ingest = opts.mode === 'designed' ? node('ingest worker', 'workers/ingest.ts') : node('ingest worker', 'bench/ingest-yardstick.ts', undefined, [opts.mode]);
    const api = node('api', temporal ? 'workers/api.ts' : 'bench/api-without-temporal.ts');
    if (worker && temporal) await untilAsync(() => hasPollers(temporal.address), worker, 120_000);
    await untilAsync(() => responds(`http://127.0.0.1:${metricsPort}/`), ingest, 60_000);
    await untilAsync(() => responds(`http://127.0.0.1:${apiPort}/healthz`), api, 60_000);

    const pids: Record<string, number> = { postgres: postmasterPid, 'mqtt broker': broker.child.pid!, 'ingest worker': ingest.child.pid!, api: api.child.pid! };
    if (temporal && worker) Object.assign(pids, { 'temporal server': temporal.process.pid!, 'robot worker': worker.child.pid! });
    stack = {
      mode: opts.mode,
      databaseUrl: postgres.url,
      temporalAddress: temporal?.address ?? null,
      mqttUrl,
      apiUrl: `http://127.0.0.1:${apiPort}`,
      apiKey,
      ingestMetricsUrl: `http://127.0.0.1:${metricsPort}/`,
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

async function hasPollers(address: string): Promise<boolean> {
  const connection = await Connection.connect({ address, connectTimeout: 1000 });
  try {
    const res = await connection.workflowService.describeTaskQueue({
      namespace: 'default',
      taskQueue: { name: taskQueues.fleet },
      taskQueueType: proto.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
    });
    return (res.pollers?.length ?? 0) > 0;
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

async function untilAsync(check: () => Promise<boolean>, piece: Piece, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (piece.child.exitCode !== null) throw new Error(`${piece.name} exited (${piece.child.exitCode}): ${piece.output().slice(-1500)}`);
    if (await check().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${piece.name} not ready after ${timeoutMs} ms: ${piece.output().slice(-1500)}`);
}
