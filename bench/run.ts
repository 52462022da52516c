import { fork, spawnSync, type ChildProcess } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import { Client as TemporalClient, Connection } from '@temporalio/client';
import { temporal as proto } from '@temporalio/proto';
import { Client as PgClient } from 'pg';
import { workflowIds } from '../temporal.config';
import type { EventCounterMessage, EventCounterStart } from './heartbeat-event-counter';
import type { Edge, ListClientMark, ListClientMessage, ListClientStart } from './list-client';
import { benchSerial, percentiles, type LoadMessage, type LoadOptions, type LoadResult, type StageMark } from './load-generator';
import { ProcessSampler, round, type TreeShare } from './proc';
import {
  brokers,
  heartbeatSources,
  ingestModes,
  nth,
  repoRoot,
  runningStacks,
  stackProblem,
  startStack,
  temporalServers,
  type Broker,
  type HeartbeatSource,
  type IngestMode,
  type Stack,
  type TemporalServer,
} from './stack';

/**
 * `npm run bench`: the same MQTT load against (a) the project as designed, (b) a naive mode that
 * signals and writes every heartbeat one by one, and (c) the floor, batched writes with no
 * Temporal; each against a fresh stack, one after the other on this machine. See
 * docs/performance.md for what is measured and how.
 */

export type BenchOptions = {
  robots: number;
  rate: number;
  durationSeconds: number;
  modes: IngestMode[];
  /** Also step the robot count up for each mode to find the highest rate it sustains. */
  step: boolean;
  stepDurationSeconds: number;
  stepMaxRobots: number;
  offlineAfterSeconds?: number;
  /** CPU niceness of the Temporal server and robot worker (designed and naive modes); 0 runs them level with the rest. */
  temporalNice: number;
  /** GOGC of the Temporal dev server: 400 took a quarter to a third less of its CPU per signal than Go's default 100 (bench/workflow-cost.ts). */
  temporalGogc: number;
  sampleSize: number;
  silentShare: number;
  connectPerSecond: number;
  /** Unmeasured seconds between reaching a robot count and holding it (workflow starts settle). */
  settleSeconds: number;
  fillerDevices: number;
  listEveryMs: number;
  /** The route timed in place of the fleet list (a path with its query), to compare what a request costs. */
  listRoute?: string;
  /** The robot worker's WORKFLOW_CACHE_SIZE; unset, the largest stage's robots plus a quarter (at least 2,000). */
  cacheSize?: number;
  /** Heartbeats from the broker, or through an SQS queue that a stand-in for the AWS IoT Rule fills. */
  source: HeartbeatSource;
  broker: Broker;
  /** Ingest worker processes (designed mode). */
  ingestWorkers: number;
  /** RabbitMQ on: Device.HeartbeatReceived per stored heartbeat, and the outbox publisher (designed mode). */
  amqp: boolean;
  /** The CLI's dev server on SQLite, or a Temporal server on the stack's PostgreSQL. */
  temporal: TemporalServer;
  /** Robot worker processes on the task queue. */
  workers: number;
  json?: string;
  log: (line: string) => void;
  progress: (line: string) => void;
};

export const defaultOptions: BenchOptions = {
  robots: 2000,
  rate: 1,
  durationSeconds: 60,
  modes: ['designed', 'naive', 'floor'],
  step: false,
  stepDurationSeconds: 45,
  stepMaxRobots: 10_000,
  temporalNice: 10,
  temporalGogc: 400,
  sampleSize: 100,
  silentShare: 0.01,
  connectPerSecond: 50,
  settleSeconds: 15,
  fillerDevices: 10_000,
  listEveryMs: 200,
  source: 'mqtt',
  broker: 'aedes',
  ingestWorkers: 1,
  amqp: false,
  temporal: 'dev',
  workers: 1,
  log: (line) => console.log(line),
  progress: progressPrinter(),
};

/** On a terminal one line rewritten in place; otherwise (CI, logs) a line every 5 s. */
function progressPrinter(): (line: string) => void {
  let printedAt = 0;
  return (line) => {
    if (process.stderr.isTTY) process.stderr.write(`\r${line.slice(0, 140).padEnd(140)}`);
    else if (line && Date.now() - printedAt >= 5000) {
      printedAt = Date.now();
      process.stderr.write(`${line}\n`);
    }
  };
}

const FRESHNESS_LIMIT_MS = 2000;
// The issue: a silent robot reported offline within OFFLINE_AFTER_SECONDS + 5 s.
const OFFLINE_SLACK_MS = 5000;
// The robot workflows may trail the projection, but not by more than the offline-detection margin the issue allows.
const DECISION_LAG_LIMIT_MS = OFFLINE_SLACK_MS;
const LIST_FILTER = 'online=true AND batteryPercent>20';
const STEP_LADDER = [250, 500, 1000, 2000, 3000, 4000, 5000, 6000, 8000, 10_000, 12_000, 15_000, 20_000];

export type ProcessFigures = Record<string, { cpuSeconds: number; cpuPercent: number; peakMemoryMb: number }>;

/** The Temporal server's own count of the hold's workflow tasks (all workflows), and what each cost. */
export type TemporalServerFigures = {
  /** Workflow tasks completed or failed (the frontend's RespondWorkflowTaskCompleted/Failed requests). */
  workflowTasks: number;
  workflowTasksPerSecond: number;
  /** CPU ms per workflow task of the Temporal server and of the robot workers together (the workers run the activities too). */
  cpuMsPerWorkflowTask: { temporalServer: number | null; robotWorkers: number | null };
  /** Schedule-to-start of every workflow task, from the server's task_schedule_to_start_latency histogram (interpolated in its buckets). */
  scheduleToStartMs: { tasks: number; p50: number; p99: number } | null;
};

/** Device.HeartbeatReceived messages the benchmark's own queue received over the hold. */
export type HeartbeatEventFigures = { received: number; distinct: number; perSecond: number; perStoredHeartbeat: number | null };

/** One hold at a steady robot count. */
export type StageFigures = {
  robots: number;
  offeredPerSecond: number;
  acceptedPerSecond: number;
  /** Heartbeats the broker acknowledged and the ingest worker had not yet finished, at the hold's end. */
  backlogAtEnd: number;
  freshnessMs: { p50: number; p99: number; max: number; heartbeats: number; neverSeen: number };
  /** Decision lag (designed mode): age of the oldest heartbeat waiting in the robot inbox, sampled each second; and the most rows waiting. */
  decisionLagMs: { p50: number; p99: number; max: number; inboxRowsMax: number } | null;
  /** Null when too few heartbeats went through to say. */
  cpuMsPerThousandHeartbeats: number | null;
  processes: ProcessFigures;
  /** Each process's CPU ms per 1000 heartbeats written (the API's and PostgreSQL's Temporal share too). */
  cpuMsPerThousandHeartbeatsByProcess: Record<string, number | null>;
  /** Each ingest worker's `fleet_ingest_heartbeats_written_total` over the hold, per second. */
  acceptedPerSecondByIngestWorker: Record<string, number>;
  temporalServer: TemporalServerFigures | null;
  heartbeatEvents: HeartbeatEventFigures | null;
  generatorBehindMs: { p50: number; p99: number; max: number };
  loadAverage: number[];
  passed: boolean;
  problems: string[];
};

export type ModeRun = {
  mode: IngestMode;
  robots: number;
  rate: number;
  durationSeconds: number;
  offeredPerSecond: number;
  published: number;
  accepted: number;
  lost: number;
  acceptedPerSecond: number;
  freshnessMs: StageFigures['freshnessMs'];
  decisionLagMs: StageFigures['decisionLagMs'];
  robotsBehind: number;
  offlineDetectionMs: { robots: number; missed: number; p50: number; max: number; offlineAfterMs: number } | null;
  workflowCacheSize: number;
  temporalPerRobotPerMinute: {
    signals: number;
    workflowTasks: number;
    activities: number;
    historyEvents: number;
    sampledRobots: number;
    /** Workflow task scheduled -> started, in the sampled and the silent robots' histories: how long decisions wait for the worker. */
    workflowTaskWaitMs: { tasks: number; p50: number; p99: number; max: number; longest: WorkflowTaskWait | null };
  } | null;
  fleetList: {
    route: string;
    requests: number;
    errors: number;
    p50: number;
    p99: number;
    max: number;
    /** Shares of the hold's list requests the API itself answered within 25, 50 and 100 ms (its own histogram). */
    server: { requests: number; within25ms: number; within50ms: number; within100ms: number } | null;
    /** The list client's event-loop delay over the hold, where the requests are timed (null if it never got there). */
    clientLoopDelayMs: { p50: number; p99: number; max: number } | null;
    /** The slowest requests of the hold, each at its second into the hold: whether the tail comes in bursts. */
    slowest: { atSecond: number; ms: number }[];
  };
  processes: ProcessFigures;
  cpuMsPerThousandHeartbeats: number | null;
  cpuMsPerThousandHeartbeatsByProcess: StageFigures['cpuMsPerThousandHeartbeatsByProcess'];
  acceptedPerSecondByIngestWorker: StageFigures['acceptedPerSecondByIngestWorker'];
  temporalServer: TemporalServerFigures | null;
  heartbeatEvents: HeartbeatEventFigures | null;
  /** Over the whole run, once drained: events received and distinct ids against heartbeats written (a heartbeat not its robot's newest has none). */
  heartbeatEventsTotal: { received: number; distinct: number; duplicates: number; heartbeatsWritten: number } | null;
  generator: { behindMs: { p50: number; p99: number; max: number }; cpuPercent: number; stateChanges: LoadResult['stateChanges'] };
  loadAverageBefore: number[];
  passed: boolean;
  problems: string[];
};

export type StepResult = { mode: IngestMode; steps: StageFigures[]; sustainedPerSecond: number; stoppedBecause: string };

export async function runBenchmark(partial: Partial<BenchOptions> = {}): Promise<Record<string, unknown>> {
  const opts: BenchOptions = { ...defaultOptions, ...partial };
  const amqpUrl = opts.amqp ? rabbitMqUrl() : undefined;
  for (const mode of opts.modes) {
    const problem = stackProblem({ mode, source: opts.source, broker: opts.broker, ingestWorkers: opts.ingestWorkers, amqpUrl });
    if (problem) throw new Error(problem);
  }
  const machine = { nproc: cpus().length, cpuModel: cpus()[0]?.model ?? 'unknown', memoryGb: round(totalmem() / 2 ** 30, 1), node: process.version, loadAverageAtStart: loadavg().map((x) => round(x, 2)) };
  opts.log(`machine: ${machine.nproc} cores (${machine.cpuModel}), ${machine.memoryGb} GiB; load average ${machine.loadAverageAtStart.join(' ')}`);
  opts.log(`setup: ${setupLine(setupOf(opts))}`);

  const runs: Partial<Record<IngestMode, ModeRun>> = {};
  for (const mode of opts.modes) {
    runs[mode] = (await runMode(mode, [opts.robots], opts.durationSeconds, opts, amqpUrl)).run;
    opts.log(summaryLine(runs[mode]!));
  }

  const steps: Partial<Record<IngestMode, StepResult>> = {};
  if (opts.step) {
    for (const mode of opts.modes) {
      const ladder = STEP_LADDER.filter((n) => n <= opts.stepMaxRobots);
      const { stages } = await runMode(mode, ladder, opts.stepDurationSeconds, opts, amqpUrl);
      const failedAt = stages.findIndex((s) => !s.passed);
      const passed = failedAt === -1 ? stages : stages.slice(0, failedAt);
      const failed = stages[failedAt];
      steps[mode] = {
        mode,
        steps: stages,
        sustainedPerSecond: passed.length ? passed[passed.length - 1].offeredPerSecond : 0,
        stoppedBecause: failed ? `${failed.robots} robots: ${failed.problems.join('; ')}` : `reached --step-max ${opts.stepMaxRobots}`,
      };
      opts.log(`stepped ${mode}: sustained ${steps[mode]!.sustainedPerSecond}/s; stopped at ${steps[mode]!.stoppedBecause}`);
    }
  }

  rmSync(join(repoRoot, '.data', `bench-${process.pid}`), { recursive: true, force: true });
  const report = buildReport(opts, machine, runs, steps);
  opts.log(formatTable(report));
  if (opts.json) writeFileSync(opts.json, `${JSON.stringify(report, null, 2)}\n`);
  return report;
}

function buildReport(
  opts: BenchOptions,
  machine: Record<string, unknown>,
  runs: Partial<Record<IngestMode, ModeRun>>,
  steps: Partial<Record<IngestMode, StepResult>>,
): Record<string, unknown> {
  const main = runs.designed ?? Object.values(runs)[0]!;
  // With --step the ratios compare the highest rate each mode sustains; without it, the rates the
  // single run achieved (equal when every mode keeps up: then CPU per heartbeat tells them apart).
  const rateOf = (mode: IngestMode) => (opts.step ? steps[mode]?.sustainedPerSecond : runs[mode]?.passed ? runs[mode]!.acceptedPerSecond : 0);
  const ratio = (a?: number | null, b?: number | null) => (a !== undefined && a !== null && b ? round(a / b, 2) : null);
  const cpu = (mode: IngestMode) => runs[mode]?.cpuMsPerThousandHeartbeats;
  return {
    robots: main.robots,
    rate: main.rate,
    durationSeconds: main.durationSeconds,
    accepted: main.accepted,
    lost: main.lost,
    acceptedPerSecond: main.acceptedPerSecond,
    freshnessMs: { p50: main.freshnessMs.p50, p99: main.freshnessMs.p99, max: main.freshnessMs.max },
    ratioToNaive: ratio(rateOf('designed'), rateOf('naive')),
    // A mode that failed the first stage sustained less than that stage: the ratio is at least this.
    ratioToNaiveAtLeast: opts.step && rateOf('naive') === 0 ? ratio(rateOf('designed'), steps.naive?.steps[0]?.offeredPerSecond) : null,
    ratioToFloor: ratio(rateOf('designed'), rateOf('floor')),
    ratioBasis: opts.step ? 'highest sustained heartbeats/s (stepped)' : 'heartbeats/s accepted in the single run (0 when the run failed)',
    cpuPerHeartbeat: { naiveOverDesigned: ratio(cpu('naive'), cpu('designed')), designedOverFloor: ratio(cpu('designed'), cpu('floor')) },
    sustainedPerSecond: opts.step ? Object.fromEntries(Object.entries(steps).map(([m, s]) => [m, s!.sustainedPerSecond])) : null,
    setup: setupOf(opts),
    machine,
    temporalNice: opts.temporalNice,
    temporalGogc: opts.temporalGogc,
    modes: runs,
    steps: opts.step ? steps : null,
  };
}

/** How the stack was put together: the options that change what runs, not how much load. */
function setupOf(opts: BenchOptions) {
  return { source: opts.source, broker: opts.broker, ingestWorkers: opts.ingestWorkers, amqp: opts.amqp, temporal: opts.temporal, robotWorkers: opts.workers };
}

function setupLine(setup: ReturnType<typeof setupOf>): string {
  const plural = (n: number, what: string) => `${n} ${what}${n === 1 ? '' : 's'}`;
  return `heartbeats over ${setup.source === 'sqs' ? 'MQTT -> IoT Rule stand-in -> SQS' : 'MQTT'}, ${setup.broker} broker, ${plural(setup.ingestWorkers, 'ingest worker')}, RabbitMQ ${setup.amqp ? 'on' : 'off'}, Temporal ${setup.temporal === 'postgres' ? 'server on PostgreSQL' : 'dev server'}, ${plural(setup.robotWorkers, 'robot worker')} (floor: no Temporal)`;
}

/** AMQP_URL when set, else the machine's RabbitMQ that scripts/rabbitmq.sh starts if it is down. */
function rabbitMqUrl(): string {
  if (process.env.AMQP_URL) return process.env.AMQP_URL;
  const result = spawnSync('bash', [join(repoRoot, 'scripts', 'rabbitmq.sh')], { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`scripts/rabbitmq.sh failed: ${result.stderr.trim().split('\n').pop()}`);
  return result.stdout.trim();
}

/** PostgreSQL's backends serving the Temporal server's databases, when it runs on the stack's PostgreSQL. */
const TEMPORAL_BACKENDS = 'postgres: temporal backends';
const temporalBackends: Record<string, TreeShare> = { [TEMPORAL_BACKENDS]: { of: 'postgres', cmdline: '^postgres: \\S+ temporal(_visibility)? ' } };

/** The benchmark's own processes, sampled but no part of the stack's CPU. */
const BENCH_OWN = ['load generator', 'heartbeat event counter'];

/**
 * One mode on a fresh stack: robots connect up to each count of `stages` in turn and the load holds
 * there for `holdSeconds`; a stage that fails (loss, freshness p99 over 2 s, a crash) ends the climb.
 */
async function runMode(mode: IngestMode, stages: number[], holdSeconds: number, opts: BenchOptions, amqpUrl?: string): Promise<{ run: ModeRun; stages: StageFigures[] }> {
  const offlineAfterSeconds = opts.offlineAfterSeconds ?? 60; // production's default; half of it is the silence after which a returning robot's heartbeat is forwarded
  const loadAverageBefore = loadavg().map((x) => round(x, 2));
  const label = (robots: number) => `${mode} ${robots}x${opts.rate}Hz`;
  opts.progress(`${label(stages[0])}: starting a fresh stack...`);
  // The worker's cache sized for the fleet it serves, as docs/performance.md "Cache sizes" asks of a deployment: its robots plus room for lid cycles and commands.
  const cacheSize = opts.cacheSize ?? Math.max(2000, Math.ceil(Math.max(...stages) * 1.25));
  const designed = mode === 'designed';
  const stack = await startStack({
    mode,
    dir: join(repoRoot, '.data', `bench-${process.pid}`, mode),
    offlineAfterSeconds,
    env: { WORKFLOW_CACHE_SIZE: String(cacheSize) },
    temporalNice: opts.temporalNice,
    temporalGogc: opts.temporalGogc,
    broker: opts.broker,
    temporal: opts.temporal,
    workers: opts.workers,
    ...(designed ? { source: opts.source, ingestWorkers: opts.ingestWorkers, amqpUrl } : {}),
  });
  const db = new PgClient({ connectionString: stack.databaseUrl });
  await db.connect();
  let generator: ChildProcess | null = null;
  let lister: ListLatency | null = null;
  let events: HeartbeatEventCounter | null = null;
  try {
    await insertFillerDevices(db, opts.fillerDevices);
    const listRoute = opts.listRoute ?? (await chooseListRoute(stack));
    const total = Math.max(...stages);
    if (stack.amqp) await (events = new HeartbeatEventCounter(stack.amqp.url, stack.amqp.heartbeatExchange)).ready;
    generator = fork(join(__dirname, 'load-generator.ts'), [], { execArgv: ['--import', 'tsx'], cwd: repoRoot, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const shares = opts.temporal === 'postgres' && stack.temporalAddress ? temporalBackends : {};
    const sampler = new ProcessSampler({ ...stack.pids, 'load generator': generator.pid!, ...(events ? { 'heartbeat event counter': events.pid } : {}) }, 1000, shares);
    sampler.start();
    const sampleSize = Math.min(opts.sampleSize, total);
    const sampleEvery = Math.max(1, Math.floor(total / sampleSize));
    const sampleSerials = Array.from({ length: sampleSize }, (_, k) => benchSerial('BENCH', k * sampleEvery));
    const poller = new FreshnessPoller(db, sampleSerials);
    const inbox = mode === 'designed' ? new InboxLagPoller(stack) : null;
    const listLatency = (lister = new ListLatency(stack, listRoute, opts.listEveryMs));
    const loadOptions: LoadOptions = {
      mqttUrl: stack.mqttUrl,
      rate: opts.rate,
      prefix: 'BENCH',
      stages,
      holdSeconds,
      sampleSize,
      silentShare: opts.silentShare,
      offlineAfterSeconds,
      connectPerSecond: opts.connectPerSecond,
      settleSeconds: opts.settleSeconds,
    };

    const figures: StageFigures[] = [];
    const judged: Promise<void>[] = [];
    let holdStart: Counters & { at: number } = { at: 0, writtenByWorker: [], temporal: null };
    let holdStarted: Promise<void> = Promise.resolve();
    const written = async () => sum(await writtenByWorker(stack));
    const counters = async (): Promise<Counters> => {
      const [byWorker, temporal] = await Promise.all([writtenByWorker(stack), stack.temporalMetricsUrl ? temporalCounters(stack.temporalMetricsUrl).catch(() => null) : null]);
      return { writtenByWorker: byWorker, temporal };
    };
    const judge = async (mark: StageMark, start: Counters & { at: number }, end: Counters) => {
      await sleep(2500); // let the last heartbeats of the hold reach the projection, or not
      const seconds = (mark.at - start.at) / 1000;
      const freshness = freshnessFrom(mark.samples, poller.observations(), Date.now());
      const processes = sampler.between(start.at, mark.at);
      const stackFigures = Object.fromEntries(Object.entries(processes).filter(([name]) => !BENCH_OWN.includes(name)));
      const writtenAtEnd = sum(end.writtenByWorker);
      const writtenInHold = writtenAtEnd - sum(start.writtenByWorker);
      const perThousand = (cpuSeconds: number) => (writtenInHold < 100 ? null : round((cpuSeconds * 1000) / (writtenInHold / 1000), 1));
      const offered = mark.robots * opts.rate;
      const backlogAtEnd = Math.max(0, mark.acked - writtenAtEnd);
      const problems: string[] = [];
      if (mark.notConnected > 0) problems.push(`${mark.notConnected} robots could not connect (broker overloaded)`);
      if (freshness.p99 >= FRESHNESS_LIMIT_MS) problems.push(`freshness p99 ${freshness.p99} ms`);
      const decisionLagMs = inbox?.between(start.at, mark.at) ?? null;
      if (decisionLagMs && decisionLagMs.p99 >= DECISION_LAG_LIMIT_MS) problems.push(`robot workflows behind: decision lag p99 ${decisionLagMs.p99} ms`);
      if (backlogAtEnd > offered * 2) problems.push(`${backlogAtEnd} heartbeats behind at the end of the hold`);
      if (mark.behindMs.p99 > 1000) problems.push(`load generator fell behind (p99 ${mark.behindMs.p99} ms): offered rate not reached`);
      problems.push(...stack.crashed());
      const stage: StageFigures = {
        robots: mark.robots,
        offeredPerSecond: round(offered, 1),
        acceptedPerSecond: round(writtenInHold / seconds, 1),
        backlogAtEnd,
        freshnessMs: freshness,
        decisionLagMs,
        cpuMsPerThousandHeartbeats: perThousand(stackCpuSeconds(stackFigures)),
        processes: stackFigures,
        cpuMsPerThousandHeartbeatsByProcess: Object.fromEntries(Object.entries(stackFigures).map(([name, p]) => [name, perThousand(p.cpuSeconds)])),
        acceptedPerSecondByIngestWorker: Object.fromEntries(end.writtenByWorker.map((w, i) => [nth('ingest worker', i), round((w - (start.writtenByWorker[i] ?? 0)) / seconds, 1)])),
        temporalServer: temporalServerFigures(start.temporal, end.temporal, seconds, stackFigures),
        heartbeatEvents: events ? events.between(start.at, mark.at, writtenInHold) : null,
        generatorBehindMs: mark.behindMs,
        loadAverage: loadavg().map((x) => round(x, 2)),
        passed: problems.length === 0,
        problems,
      };
      figures.push(stage);
      if (stages.length > 1) opts.log(`  ${label(mark.robots)}: ${stage.acceptedPerSecond}/s, freshness p99 ${freshness.p99} ms, backlog ${backlogAtEnd}, CPU ${stage.cpuMsPerThousandHeartbeats} ms/1000${stage.passed ? '' : ` FAILED: ${problems.join('; ')}`}`);
      if (!stage.passed && generator?.connected) generator.send('stop');
    };

    const result = await new Promise<LoadResult>((resolve, reject) => {
      generator!.on('message', (message: LoadMessage) => {
        if (message.type === 'result') return resolve(message);
        if (message.type === 'stage') {
          // Registered at once: the generator's result may come before the ingest's counter answers.
          const counted = counters();
          listLatency.mark(message.edge === 'start' ? 'from' : 'to');
          if (message.edge === 'start') holdStarted = counted.then((c) => void (holdStart = { ...c, at: message.at }));
          else judged.push(Promise.all([counted, holdStarted]).then(([c]) => judge(message, holdStart, c)));
          return;
        }
        const head = `${label(stages[message.stage] ?? total)}: ${message.phase}${message.phase === 'connecting' ? ` ${message.connected} connected` : ''}`;
        void written().catch(() => NaN).then((w) =>
          opts.progress(`${head}; published ${message.published}, acked ${message.acked}, written ${w}; generator behind ${message.behindMs} ms`),
        );
      });
      generator!.once('exit', (code) => reject(new Error(`load generator exited (${code}) before reporting`)));
      generator!.send(loadOptions);
    });
    await listLatency.stop();
    await Promise.all(judged);

    // Drain: everything the broker acknowledged should be written by the ingest worker.
    const drainBy = Date.now() + 20_000;
    let accepted = await written();
    while (accepted < result.acked && Date.now() < drainBy) {
      await sleep(200);
      accepted = await written();
    }
    const eventsTotal = events ? await events.settled(accepted) : null;
    await poller.stop();
    await inbox?.stop();
    await sampler.stop();
    const robots = figures[0]?.robots ?? stages[0];
    const problems: string[] = [];
    const robotsBehind = await robotsBehindCount(db, result.lastTimestamp);
    const offline = mode === 'floor' || Object.keys(result.silent).length === 0 ? null : await offlineDetection(db, result.silent, offlineAfterSeconds * 1000);
    const hold = { from: holdStart.at, to: holdStart.at + holdSeconds * 1000 };
    const work = stack.temporalAddress
      ? await temporalWork(stack.temporalAddress, sampleSerials.slice(0, 10), Object.keys(result.silent), hold).catch((e) => {
          problems.push(`history sampling failed: ${(e as Error).message}`);
          return null;
        })
      : null;
    const lost = Math.max(0, result.acked - accepted);
    const list = await listLatency.figures(hold.from, hold.to);
    const first = figures[0];
    if (result.errors > 0) problems.push(`${result.errors} publishes not acknowledged by the broker`);
    if (lost > 0) problems.push(`${lost} heartbeats not written within 20 s of the end`);
    if (robotsBehind > 0) problems.push(`${robotsBehind} robots' last heartbeat missing from the projection`);
    problems.push(...offlineProblems(offline));
    if (listLatency.failures() > 0) problems.push(`${listLatency.failures()} fleet list requests failed`);
    for (const f of figures) problems.push(...f.problems.map((p) => (stages.length > 1 ? `${f.robots} robots: ${p}` : p)));
    const generatorFigures = sampler.between(holdStart.at, hold.to)['load generator'];
    const run: ModeRun = {
      mode,
      robots,
      rate: opts.rate,
      durationSeconds: holdSeconds,
      offeredPerSecond: first?.offeredPerSecond ?? 0,
      published: result.acked,
      accepted,
      lost,
      acceptedPerSecond: first?.acceptedPerSecond ?? 0,
      freshnessMs: first?.freshnessMs ?? { p50: 0, p99: 0, max: 0, heartbeats: 0, neverSeen: 0 },
      decisionLagMs: first?.decisionLagMs ?? null,
      robotsBehind,
      offlineDetectionMs: offline,
      workflowCacheSize: cacheSize,
      temporalPerRobotPerMinute: work,
      fleetList: list,
      processes: first?.processes ?? {},
      cpuMsPerThousandHeartbeats: first?.cpuMsPerThousandHeartbeats ?? null,
      cpuMsPerThousandHeartbeatsByProcess: first?.cpuMsPerThousandHeartbeatsByProcess ?? {},
      acceptedPerSecondByIngestWorker: first?.acceptedPerSecondByIngestWorker ?? {},
      temporalServer: first?.temporalServer ?? null,
      heartbeatEvents: first?.heartbeatEvents ?? null,
      heartbeatEventsTotal: eventsTotal && { ...eventsTotal, duplicates: eventsTotal.received - eventsTotal.distinct, heartbeatsWritten: accepted },
      generator: { behindMs: first?.generatorBehindMs ?? { p50: 0, p99: 0, max: 0 }, cpuPercent: generatorFigures?.cpuPercent ?? 0, stateChanges: result.stateChanges },
      loadAverageBefore,
      passed: problems.length === 0,
      problems: [...new Set(problems)],
    };
    return { run, stages: figures };
  } finally {
    if (generator && generator.exitCode === null) generator.kill('SIGKILL');
    await lister?.stop();
    await events?.stop();
    await db.end().catch(() => undefined);
    await stack.stop();
    opts.progress('');
  }
}

/** The API's CPU follows the fleet-list requests the benchmark makes, not the heartbeats; a share is already in its tree's. */
function stackCpuSeconds(processes: ProcessFigures): number {
  return Object.entries(processes).filter(([name]) => name !== 'api' && name !== TEMPORAL_BACKENDS).reduce((total, [, p]) => total + p.cpuSeconds, 0);
}

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

/** What the benchmark reads at each edge of a hold, for the hold's differences. */
type Counters = { writtenByWorker: number[]; temporal: TemporalCounters | null };
type TemporalCounters = { workflowTasks: number; scheduleToStart: Map<string, number> };

/** The robot workers' trees, however many there are. */
const isRobotWorker = (name: string) => name === 'robot worker' || name.startsWith('robot worker ');

function temporalServerFigures(start: TemporalCounters | null, end: TemporalCounters | null, seconds: number, processes: ProcessFigures): TemporalServerFigures | null {
  if (!start || !end) return null;
  const workflowTasks = end.workflowTasks - start.workflowTasks;
  const perTask = (cpuSeconds: number | undefined) => (workflowTasks > 0 && cpuSeconds !== undefined ? round((cpuSeconds * 1000) / workflowTasks, 3) : null);
  const workers = Object.entries(processes).filter(([name]) => isRobotWorker(name));
  const buckets = [...end.scheduleToStart].map(([le, count]): [number, number] => [Number(le), count - (start.scheduleToStart.get(le) ?? 0)]).sort((a, b) => a[0] - b[0]);
  const tasks = buckets.length ? buckets[buckets.length - 1][1] : 0;
  return {
    workflowTasks,
    workflowTasksPerSecond: round(workflowTasks / seconds, 1),
    cpuMsPerWorkflowTask: {
      temporalServer: perTask(processes['temporal server']?.cpuSeconds),
      robotWorkers: perTask(workers.length ? workers.reduce((total, [, p]) => total + p.cpuSeconds, 0) : undefined),
    },
    scheduleToStartMs: tasks > 0 ? { tasks, p50: round(histogramQuantile(buckets, 0.5) * 1000, 1), p99: round(histogramQuantile(buckets, 0.99) * 1000, 1) } : null,
  };
}

/** Prometheus's histogram_quantile: linear inside the bucket the rank falls in; the last finite bound if it falls past it. */
export function histogramQuantile(cumulative: [number, number][], q: number): number {
  const total = cumulative[cumulative.length - 1]?.[1] ?? 0;
  const rank = q * total;
  let [lower, below] = [0, 0];
  for (const [le, count] of cumulative) {
    if (count >= rank) return le === Infinity ? lower : lower + ((le - lower) * (rank - below)) / Math.max(count - below, 1e-9);
    [lower, below] = [le, count];
  }
  return lower;
}

const labelsOf = (text: string) => Object.fromEntries([...text.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));

/**
 * From one scrape of the Temporal server's /metrics, for the stack's namespace (not the server's own
 * `temporal_system`): workflow tasks answered (the frontend's RespondWorkflowTaskCompleted and
 * RespondWorkflowTaskFailed requests: every workflow, every queue), and the cumulative buckets of
 * its workflow-task schedule-to-start histogram (normal and sticky queues).
 */
async function temporalCounters(url: string): Promise<TemporalCounters> {
  const text = await (await fetch(url, { signal: AbortSignal.timeout(5000) })).text();
  let workflowTasks = 0;
  const scheduleToStart = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^(\w+)\{([^}]*)\} (\S+)$/.exec(line);
    if (!m) continue;
    const [, name, labelText, value] = m;
    if (name !== 'service_requests' && name !== 'task_schedule_to_start_latency_bucket') continue;
    const labels = labelsOf(labelText);
    if (labels.namespace !== 'default') continue;
    if (name === 'service_requests' && labels.service_name === 'frontend' && /^RespondWorkflowTask(Completed|Failed)$/.test(labels.operation)) workflowTasks += Number(value);
    if (name === 'task_schedule_to_start_latency_bucket' && labels.task_type === 'Workflow') {
      const le = labels.le === '+Inf' ? 'Infinity' : labels.le;
      scheduleToStart.set(le, (scheduleToStart.get(le) ?? 0) + Number(value));
    }
  }
  return { workflowTasks, scheduleToStart };
}

/**
 * The benchmark's own consumer of Device.HeartbeatReceived (bench/heartbeat-event-counter.ts),
 * counting what arrives; `between` gives a window's messages from its counts taken every 200 ms.
 */
class HeartbeatEventCounter {
  readonly ready: Promise<void>;
  private readonly child: ChildProcess;
  private counts: { at: number; received: number; distinct: number }[] = [{ at: Date.now(), received: 0, distinct: 0 }];

  constructor(amqpUrl: string, exchange: string) {
    this.child = fork(join(__dirname, 'heartbeat-event-counter.ts'), [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.ready = new Promise((resolve, reject) => {
      this.child.on('message', (message: EventCounterMessage) => {
        if (message.type === 'ready') resolve();
        else this.counts.push(message);
      });
      this.child.once('exit', (code) => reject(new Error(`the heartbeat event counter exited (${code})`)));
    });
    this.child.send({ amqpUrl, exchange, everyMs: 200 } satisfies EventCounterStart);
  }

  get pid(): number {
    return this.child.pid!;
  }

  private at(time: number) {
    return this.counts.reduce((best, c) => (Math.abs(c.at - time) < Math.abs(best.at - time) ? c : best));
  }

  between(from: number, to: number, heartbeatsWritten: number): HeartbeatEventFigures {
    const [a, b] = [this.at(from), this.at(to)];
    const received = b.received - a.received;
    return { received, distinct: b.distinct - a.distinct, perSecond: round(received / Math.max((b.at - a.at) / 1000, 0.001), 1), perStoredHeartbeat: heartbeatsWritten > 0 ? round(received / heartbeatsWritten, 3) : null };
  }

  /** The run's totals once no more arrive (at most 10 s), or once as many distinct events as heartbeats written have. */
  async settled(heartbeatsWritten: number): Promise<{ received: number; distinct: number }> {
    const until = Date.now() + 10_000;
    let last = this.counts[this.counts.length - 1];
    while (Date.now() < until && last.distinct < heartbeatsWritten) {
      await sleep(1000);
      const now = this.counts[this.counts.length - 1];
      if (now.received === last.received) break;
      last = now;
    }
    const { received, distinct } = this.counts[this.counts.length - 1];
    return { received, distinct };
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || !this.child.connected) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    const timeout = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
    this.child.send('stop');
    await exited;
    clearTimeout(timeout);
  }
}

// ---- measurements

/** Polls the projection's last_heartbeat_at of the sampled robots, keeping each change and when it was seen. */
class FreshnessPoller {
  private seen = new Map<string, { at: number; heartbeatAt: number }[]>();
  private running = true;
  private done: Promise<void>;

  constructor(private readonly db: PgClient, private readonly serials: string[], everyMs = 50) {
    this.done = (async () => {
      while (this.running) {
        const started = Date.now();
        const { rows } = await db
          .query<{ serial_number: string; t: string }>(
            'SELECT serial_number, (extract(epoch FROM last_heartbeat_at) * 1000)::bigint AS t FROM devices WHERE serial_number = ANY($1)',
            [serials],
          )
          .catch(() => ({ rows: [] as { serial_number: string; t: string }[] }));
        const at = Date.now();
        for (const row of rows) {
          const list = this.seen.get(row.serial_number) ?? [];
          const heartbeatAt = Number(row.t);
          if (list.length === 0 || list[list.length - 1].heartbeatAt !== heartbeatAt) list.push({ at, heartbeatAt });
          this.seen.set(row.serial_number, list);
        }
        await sleep(Math.max(0, everyMs - (at - started)));
      }
    })();
  }

  observations(): Map<string, { at: number; heartbeatAt: number }[]> {
    return this.seen;
  }

  async stop(): Promise<Map<string, { at: number; heartbeatAt: number }[]>> {
    this.running = false;
    await this.done;
    return this.seen;
  }
}

/** How far the robot workflows are behind the projection: the ingest's robot inbox gauges, each second. */
class InboxLagPoller {
  private samples: { at: number; lagMs: number; rows: number }[] = [];
  private running = true;
  private done: Promise<void>;

  constructor(stack: Stack, everyMs = 1000) {
    this.done = (async () => {
      while (this.running) {
        // The inbox is one table: any ingest worker's gauges read all of it.
        const [rows, oldestSeconds] = await metricValues(stack.ingestMetricsUrls[0], ['fleet_robot_inbox_rows', 'fleet_robot_inbox_oldest_seconds']).catch(() => [NaN, NaN]);
        if (!Number.isNaN(rows)) this.samples.push({ at: Date.now(), lagMs: oldestSeconds * 1000, rows });
        await sleep(everyMs);
      }
    })();
  }

  between(from: number, to: number): NonNullable<StageFigures['decisionLagMs']> {
    const inHold = this.samples.filter((x) => x.at >= from && x.at <= to);
    const lags = inHold.map((x) => x.lagMs).sort((a, b) => a - b);
    const at = (q: number) => Math.round(lags[Math.min(lags.length - 1, Math.floor(q * lags.length))] ?? 0);
    return { p50: at(0.5), p99: at(0.99), max: Math.round(lags[lags.length - 1] ?? 0), inboxRowsMax: Math.max(0, ...inHold.map((x) => x.rows)) };
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.done;
  }
}

/** Each published heartbeat of a sampled robot: when the projection first showed it or a newer one. */
function freshnessFrom(samples: Record<string, number[]>, seen: Map<string, { at: number; heartbeatAt: number }[]>, end: number): ModeRun['freshnessMs'] {
  const delays: number[] = [];
  let neverSeen = 0;
  for (const [serial, published] of Object.entries(samples)) {
    const observations = seen.get(serial) ?? [];
    let i = 0;
    for (const ts of published) {
      while (i < observations.length && observations[i].heartbeatAt < ts) i++;
      if (i < observations.length) delays.push(observations[i].at - ts);
      else {
        neverSeen += 1;
        delays.push(end - ts);
      }
    }
  }
  return { ...percentiles(delays), heartbeats: delays.length, neverSeen };
}

/**
 * Sequential fleet-list requests while the load runs, sent and timed by a process of their own
 * (bench/list-client.ts); figures for those sent inside a window (the hold), beside what the API's
 * own request histogram says of the same window and how late the client's event loop ran, to tell
 * the server's time from the time spent waiting around it.
 */
class ListLatency {
  private requests: { at: number; ms: number | null }[] = [];
  private readonly child: ChildProcess;
  private readonly marked = new Set<Edge>();
  private readonly marks: Record<Edge, Promise<ListClientMark | null>>;

  constructor(private readonly stack: Stack, private readonly route: string, everyMs: number) {
    this.child = fork(join(__dirname, 'list-client.ts'), [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const resolvers: Partial<Record<Edge, (mark: ListClientMark | null) => void>> = {};
    const markOf = (edge: Edge) => new Promise<ListClientMark | null>((resolve) => (resolvers[edge] = resolve));
    this.marks = { from: markOf('from'), to: markOf('to') };
    this.child.on('message', (message: ListClientMessage) => {
      if (message.type === 'request') this.requests.push({ at: message.at, ms: message.ms });
      else resolvers[message.edge]!(message);
    });
    this.child.once('exit', () => Object.values(resolvers).forEach((resolve) => resolve(null)));
    const start: ListClientStart = { url: `${stack.apiUrl}${route}`, metricsUrl: `${stack.apiUrl}/metrics`, apiKey: stack.apiKey, everyMs };
    this.child.send(start);
  }

  /** The hold of the first stage starts or ends: the client snapshots the API's histogram and times its loop, between two requests. */
  mark(edge: Edge): void {
    if (this.marked.has(edge) || !this.child.connected) return;
    this.marked.add(edge);
    this.child.send(edge);
  }

  /** Ends the client once its request in flight is answered and its marks are sent. */
  async stop(): Promise<void> {
    if (this.child.exitCode !== null || !this.child.connected) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    const timeout = setTimeout(() => this.child.kill('SIGKILL'), 15_000);
    this.child.send('stop');
    await exited;
    clearTimeout(timeout);
  }

  /** Failed requests over the whole run, the climb too. */
  failures(): number {
    return this.requests.filter((r) => r.ms === null).length;
  }

  async figures(from: number, to: number): Promise<ModeRun['fleetList']> {
    const inWindow = this.requests.filter((r) => r.at >= from && r.at <= to);
    const latencies = inWindow.flatMap((r) => (r.ms === null ? [] : [r.ms]));
    const p = percentiles(latencies.map((x) => x * 10));
    const [atFrom, atTo] = await Promise.all([this.marks.from, this.marks.to]);
    const path = this.route.split('?')[0];
    const [before, after] = [serverHistogram(atFrom?.metrics, path), serverHistogram(atTo?.metrics, path)];
    const clientLoopDelayMs = atTo?.loopDelay ?? null;
    const count = (le: string) => (after?.get(le) ?? 0) - (before?.get(le) ?? 0);
    const served = count('+Inf');
    const share = (le: string) => round(count(le) / served, 3);
    return {
      route: this.route,
      requests: inWindow.length,
      errors: inWindow.length - latencies.length,
      p50: p.p50 / 10,
      p99: p.p99 / 10,
      max: p.max / 10,
      server: before && after && served > 0 ? { requests: served, within25ms: share('0.025'), within50ms: share('0.05'), within100ms: share('0.1') } : null,
      clientLoopDelayMs,
      slowest: inWindow
        .flatMap((r) => (r.ms === null ? [] : [{ atSecond: round((r.at - from) / 1000, 1), ms: round(r.ms, 1) }]))
        .sort((a, b) => b.ms - a.ms)
        .slice(0, 10),
    };
  }
}

/** Cumulative bucket counts (by `le`) of the API's request histogram for GETs of `path` answered 200, from a /metrics text. */
function serverHistogram(text: string | null | undefined, path: string): Map<string, number> | null {
  const buckets = new Map<string, number>();
  for (const line of (text ?? '').split('\n')) {
    if (!line.startsWith('fleet_http_request_duration_seconds_bucket{')) continue;
    if (!line.includes(`route="${path}"`) || !line.includes('method="GET"') || !line.includes('status="200"')) continue;
    const le = /le="([^"]+)"/.exec(line)?.[1];
    if (le) buckets.set(le, Number(line.slice(line.lastIndexOf(' ') + 1)));
  }
  return buckets.size > 0 ? buckets : null;
}

/** GET /v1/fleet-devices when it exists, else GET /v1/devices with the same filter. */
async function chooseListRoute(stack: Stack): Promise<string> {
  const candidates = [`/v1/fleet-devices?filter=${encodeURIComponent(LIST_FILTER)}`, `/v1/devices?filter=${encodeURIComponent(LIST_FILTER)}`];
  for (const route of candidates) {
    const res = await fetch(`${stack.apiUrl}${route}`, { headers: { 'x-api-key': stack.apiKey } }).catch(() => null);
    if (res?.ok) return route;
  }
  return candidates[candidates.length - 1];
}

export async function insertFillerDevices(db: PgClient, count: number): Promise<void> {
  if (count <= 0) return;
  const serial = `'FILL' || lpad(i::text, 6, '0')`;
  // One battery each; battery_percent is its charge, as the heartbeat upsert stores the lowest battery.
  // Last seen a day ago: rows for the list to read, outside the silence sweeper's window (domain/silence.ts).
  await db.query(`INSERT INTO devices (serial_number, online, lid_is_open, network_type, signal_strength, lat, lng, last_heartbeat_at, last_seen_at, connectivity_updated_at, battery_percent)
    SELECT ${serial}, random() < 0.7, random() < 0.05, 'CELLULAR', -80, 37.7 + random() / 10, -122.4 + random() / 10, now() - interval '1 day', now() - interval '1 day', now() - interval '1 day', (random() * 100)::int
    FROM generate_series(1, $1) i`, [count]);
  await db.query(`INSERT INTO device_batteries (serial_number, battery_index, charge_percent, is_charging, voltage, updated_at)
    SELECT serial_number, 0, battery_percent, false, 48, now() FROM devices WHERE serial_number LIKE 'FILL%'`);
  await db.query(`INSERT INTO device_components (serial_number, component_name, status_code, updated_at)
    SELECT ${serial}, c, 'OK', now() FROM generate_series(1, $1) i, unnest(ARRAY['GPS', 'CAMERAS', 'SEGWAY_BASE', 'LTE_ROUTERS', 'EMERGENCY_BUTTON']) c`, [count]);
  // The fleet view (GET /v1/fleet-devices) lists fleet_devices rows joined to devices.
  await db.query(`DO $$ BEGIN IF to_regclass('fleet_devices') IS NOT NULL THEN
    INSERT INTO fleet_devices (serial_number, status, status_reason)
    SELECT serial_number, CASE WHEN online THEN 'UNDEPLOYED' ELSE 'OFFLINE' END, 'benchmark filler' FROM devices WHERE serial_number LIKE 'FILL%';
    END IF; END $$`);
  await db.query('ANALYZE');
}

/** Each ingest worker's heartbeats written (its counter): the stack's is their sum. */
async function writtenByWorker(stack: Stack): Promise<number[]> {
  return Promise.all(stack.ingestMetricsUrls.map(async (url) => (await metricValues(url, ['fleet_ingest_heartbeats_written_total']))[0]));
}

/** Metric values from one scrape of an ingest worker's /metrics (0 for one it does not have). */
async function metricValues(url: string, names: string[]): Promise<number[]> {
  const text = await (await fetch(url)).text();
  return names.map((name) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? 0));
}

/** Robots whose newest published heartbeat is not the projection's newest. */
async function robotsBehindCount(db: PgClient, last: Record<string, number>): Promise<number> {
  const serials = Object.keys(last);
  const { rows } = await db.query<{ serial_number: string; t: string }>(
    'SELECT serial_number, (extract(epoch FROM last_heartbeat_at) * 1000)::bigint AS t FROM devices WHERE serial_number = ANY($1)',
    [serials],
  );
  const projected = new Map(rows.map((r) => [r.serial_number, Number(r.t)]));
  return serials.filter((s) => projected.get(s) !== last[s]).length;
}

/** What the issue's offline target makes of a run's silent robots: each reported, none late. */
export function offlineProblems(offline: ModeRun['offlineDetectionMs']): string[] {
  if (!offline) return [];
  const limit = offline.offlineAfterMs + OFFLINE_SLACK_MS;
  const problems = offline.missed > 0 ? [`${offline.missed} silent robots never reported offline`] : [];
  if (offline.robots > offline.missed && offline.max > limit) problems.push(`a silent robot reported offline after ${offline.max} ms, over the limit of ${limit} ms`);
  return problems;
}

/** From each silent robot's last heartbeat to its offline event being recorded. */
async function offlineDetection(db: PgClient, silent: Record<string, number>, offlineAfterMs: number): Promise<NonNullable<ModeRun['offlineDetectionMs']>> {
  const serials = Object.keys(silent);
  let rows: { serial: string; at: string }[] = [];
  const deadline = Date.now() + 10_000;
  while (serials.length > 0) {
    ({ rows } = await db.query<{ serial: string; at: string }>(
      `SELECT serial, (extract(epoch FROM min(recorded_at)) * 1000)::bigint AS at FROM domain_events
       WHERE type = 'Device.ConnectivityChanged' AND serial = ANY($1) AND (data->>'online') = 'false' GROUP BY serial`,
      [serials],
    ));
    if (rows.length >= serials.length || Date.now() > deadline) break;
    await sleep(500);
  }
  const delays = rows.map((r) => Number(r.at) - silent[r.serial]);
  const p = percentiles(delays);
  return { robots: serials.length, missed: serials.length - rows.length, p50: p.p50, max: p.max, offlineAfterMs };
}

const eventTimeMs = (e: proto.api.history.v1.IHistoryEvent) => Number(e.eventTime?.seconds ?? 0) * 1000 + (e.eventTime?.nanos ?? 0) / 1e6;

/** Temporal work of a sample of robot workflows (every run of each) during the hold, per robot per minute. */
async function temporalWork(
  address: string,
  serials: string[],
  silentSerials: string[],
  window: { from: number; to: number },
): Promise<NonNullable<ModeRun['temporalPerRobotPerMinute']>> {
  const { EventType } = proto.api.enums.v1;
  const connection = await Connection.connect({ address });
  const client = new TemporalClient({ connection });
  const totals = { signals: 0, workflowTasks: 0, activities: 0, historyEvents: 0 };
  const waits: number[] = [];
  let longest: WorkflowTaskWait | null = null;
  try {
    for (const serial of [...serials, ...silentSerials]) {
      const sampled = serials.includes(serial);
      const handle = client.workflow.getHandle(workflowIds.robot(serial));
      let runId: string | undefined = (await handle.describe()).runId;
      // Follow the chain of runs backwards through continue-as-new.
      for (let guard = 0; runId && guard < 50; guard++) {
        const history: proto.api.history.v1.IHistory = await client.workflow.getHandle(workflowIds.robot(serial), runId).fetchHistory();
        const all: proto.api.history.v1.IHistoryEvent[] = history.events ?? [];
        const events = all.filter((e) => eventTimeMs(e) >= window.from && eventTimeMs(e) <= window.to);
        for (const e of events) {
          const scheduled = e.workflowTaskStartedEventAttributes && all.find((s) => Number(s.eventId) === Number(e.workflowTaskStartedEventAttributes!.scheduledEventId));
          if (!scheduled) continue;
          const waitMs = eventTimeMs(e) - eventTimeMs(scheduled);
          waits.push(waitMs);
          if (longest === null || waitMs > longest.waitMs) longest = describeWait(serial, !sampled, waitMs, scheduled, all);
        }
        if (!sampled) {
          runId = all[0]?.workflowExecutionStartedEventAttributes?.continuedExecutionRunId || undefined;
          continue;
        }
        totals.historyEvents += events.length;
        for (const e of events) {
          if (e.eventType === EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED) totals.signals += 1;
          if (e.eventType === EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED) totals.workflowTasks += 1;
          if (e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED) totals.activities += 1;
        }
        runId = all[0]?.workflowExecutionStartedEventAttributes?.continuedExecutionRunId || undefined;
      }
    }
  } finally {
    await connection.close();
  }
  const minutes = (window.to - window.from) / 60_000;
  const per = (n: number) => round(n / Math.max(serials.length, 1) / minutes, 2);
  const wait = percentiles(waits);
  return {
    signals: per(totals.signals),
    workflowTasks: per(totals.workflowTasks),
    activities: per(totals.activities),
    historyEvents: per(totals.historyEvents),
    sampledRobots: serials.length,
    workflowTaskWaitMs: { tasks: waits.length, p50: wait.p50, p99: wait.p99, max: wait.max, longest },
  };
}

type WorkflowTaskWait = {
  serial: string;
  silentRobot: boolean;
  waitMs: number;
  scheduledAt: string;
  attempt: number;
  stickyQueue: boolean;
  after: string | null;
  /** The run's events before it (type, time, and the queue kind of a scheduled task): a timed-out sticky task, a lost stickiness and a slow shared queue look different here. */
  eventsBefore: { type: string; at: string; sticky?: boolean }[];
};

/** The longest-waiting task's circumstances: which robot, which queue, and what event led to it. */
function describeWait(serial: string, silentRobot: boolean, waitMs: number, scheduled: proto.api.history.v1.IHistoryEvent, all: proto.api.history.v1.IHistoryEvent[]): WorkflowTaskWait {
  const attrs = scheduled.workflowTaskScheduledEventAttributes;
  const before = all.find((x) => Number(x.eventId) === Number(scheduled.eventId) - 1);
  return {
    serial,
    silentRobot,
    waitMs,
    scheduledAt: new Date(eventTimeMs(scheduled)).toISOString(),
    attempt: attrs?.attempt ?? 1,
    stickyQueue: attrs?.taskQueue?.kind === proto.api.enums.v1.TaskQueueKind.TASK_QUEUE_KIND_STICKY,
    after: before?.eventType == null ? null : proto.api.enums.v1.EventType[before.eventType],
    eventsBefore: all.filter((x) => Number(x.eventId) < Number(scheduled.eventId)).slice(-8).map(eventSummary),
  };
}

function eventSummary(e: proto.api.history.v1.IHistoryEvent): WorkflowTaskWait['eventsBefore'][number] {
  const type = e.eventType == null ? 'unknown' : proto.api.enums.v1.EventType[e.eventType];
  const queue = e.workflowTaskScheduledEventAttributes?.taskQueue;
  return { type, at: new Date(eventTimeMs(e)).toISOString(), ...(queue ? { sticky: queue.kind === proto.api.enums.v1.TaskQueueKind.TASK_QUEUE_KIND_STICKY } : {}) };
}

// ---- output

function summaryLine(r: ModeRun): string {
  return `${r.mode}: ${r.robots} robots x ${r.rate} Hz, ${r.durationSeconds} s: accepted ${r.acceptedPerSecond}/s, lost ${r.lost}, freshness p50/p99/max ${r.freshnessMs.p50}/${r.freshnessMs.p99}/${r.freshnessMs.max} ms, CPU ${r.cpuMsPerThousandHeartbeats} ms per 1000 heartbeats${r.passed ? '' : ` FAILED: ${r.problems.join('; ')}`}`;
}

export function formatTable(report: Record<string, any>): string {
  const runs = Object.values(report.modes as Record<string, ModeRun>);
  const names = ['designed (a)', 'naive (b)', 'floor (c)'];
  const header = runs.map((r) => names[ingestModes.indexOf(r.mode)]);
  const pieces = [...new Set(runs.flatMap((r) => Object.keys(r.processes)))];
  const rows: [string, (r: ModeRun) => string][] = [
    ['robots x Hz, seconds', (r) => `${r.robots} x ${r.rate}, ${r.durationSeconds}`],
    ['accepted/s (offered)', (r) => `${r.acceptedPerSecond} (${r.offeredPerSecond})`],
    ['accepted/s per ingest worker', (r) => Object.values(r.acceptedPerSecondByIngestWorker ?? {}).join(' / ') || '-'],
    ['lost', (r) => String(r.lost)],
    ['freshness p50/p99/max ms', (r) => `${r.freshnessMs.p50}/${r.freshnessMs.p99}/${r.freshnessMs.max}`],
    ['decision lag p50/p99/max ms (inbox rows max)', (r) => (r.decisionLagMs ? `${r.decisionLagMs.p50}/${r.decisionLagMs.p99}/${r.decisionLagMs.max} (${r.decisionLagMs.inboxRowsMax})` : '-')],
    ['offline after silence p50/max ms', (r) => {
      const o = r.offlineDetectionMs;
      if (!o?.robots) return '-';
      const seen = `${o.robots - o.missed} of ${o.robots} silent robots seen offline`;
      return o.missed === o.robots ? seen : `${o.p50}/${o.max} (${seen}; limit ${o.offlineAfterMs + OFFLINE_SLACK_MS})`;
    }],
    ['robot worker cache (WORKFLOW_CACHE_SIZE)', (r) => (r.mode === 'floor' ? '-' : String(r.workflowCacheSize))],
    ['signals/robot/min', (r) => String(r.temporalPerRobotPerMinute?.signals ?? '-')],
    ['workflow tasks/robot/min', (r) => String(r.temporalPerRobotPerMinute?.workflowTasks ?? '-')],
    ['activities/robot/min', (r) => String(r.temporalPerRobotPerMinute?.activities ?? '-')],
    ['history events/robot/min', (r) => String(r.temporalPerRobotPerMinute?.historyEvents ?? '-')],
    ['workflow task wait p50/p99/max ms (tasks)', (r) => {
      const w = r.temporalPerRobotPerMinute?.workflowTaskWaitMs;
      return w ? `${w.p50}/${w.p99}/${w.max} (${w.tasks})` : '-';
    }],
    ['longest-waiting workflow task', (r) => {
      const l = r.temporalPerRobotPerMinute?.workflowTaskWaitMs.longest;
      return l ? `${l.waitMs} ms, ${l.silentRobot ? 'silent ' : ''}robot ${l.serial}, after ${l.after}, ${l.stickyQueue ? 'sticky' : 'normal'} queue, attempt ${l.attempt}` : '-';
    }],
    ['workflow tasks/s, all workflows (Temporal server)', (r) => String(r.temporalServer?.workflowTasksPerSecond ?? '-')],
    ['workflow task schedule-to-start p50/p99 ms, all tasks (server histogram)', (r) => {
      const s = r.temporalServer?.scheduleToStartMs;
      return s ? `${s.p50}/${s.p99} (${s.tasks})` : '-';
    }],
    ['CPU ms per workflow task: Temporal server / robot workers', (r) => {
      const c = r.temporalServer?.cpuMsPerWorkflowTask;
      return c ? `${c.temporalServer ?? '-'} / ${c.robotWorkers ?? '-'}` : '-';
    }],
    ['heartbeat events/s (per heartbeat written)', (r) => (r.heartbeatEvents ? `${r.heartbeatEvents.perSecond} (${r.heartbeatEvents.perStoredHeartbeat ?? '-'})` : '-')],
    ['heartbeat events over the run: received / distinct / heartbeats written', (r) => {
      const t = r.heartbeatEventsTotal;
      return t ? `${t.received} / ${t.distinct} / ${t.heartbeatsWritten}` : '-';
    }],
    ['fleet list p50/p99 ms', (r) => `${r.fleetList.p50}/${r.fleetList.p99}`],
    ['fleet list answered by the API within 25/50/100 ms', (r) => (r.fleetList.server ? `${pct(r.fleetList.server.within25ms)}/${pct(r.fleetList.server.within50ms)}/${pct(r.fleetList.server.within100ms)} %` : '-')],
    ["list client's event-loop delay p50/p99/max ms", (r) => { const d = r.fleetList.clientLoopDelayMs; return d ? `${d.p50}/${d.p99}/${d.max}` : '-'; }],
    ['CPU ms per 1000 heartbeats', (r) => String(r.cpuMsPerThousandHeartbeats ?? '-')],
    ...pieces.map((p): [string, (r: ModeRun) => string] => [
      `${p} CPU% / MB / CPU ms per 1000 heartbeats`,
      (r) => (r.processes[p] ? `${r.processes[p].cpuPercent} / ${r.processes[p].peakMemoryMb} / ${r.cpuMsPerThousandHeartbeatsByProcess?.[p] ?? '-'}` : '-'),
    ]),
    ['load generator CPU%', (r) => String(r.generator.cpuPercent)],
    ['load average before', (r) => r.loadAverageBefore.join(' ')],
    ['passed', (r) => (r.passed ? 'yes' : `no: ${r.problems.join('; ')}`)],
  ];
  const lines = [...(report.setup ? [`setup: ${setupLine(report.setup)}`, ''] : []), `| | ${header.join(' | ')} |`, `|---|${header.map(() => '---').join('|')}|`, ...rows.map(([name, f]) => `| ${name} | ${runs.map(f).join(' | ')} |`)];
  if (report.steps) {
    lines.push('', '| stepped | highest sustained/s | stages (offered/s: freshness p99 ms, decision lag p99 ms, backlog at end) |', '|---|---|---|');
    for (const s of Object.values(report.steps as Record<string, StepResult>)) {
      lines.push(`| ${names[ingestModes.indexOf(s.mode)]} | ${s.sustainedPerSecond} | ${s.steps.map((x) => `${x.offeredPerSecond}: ${x.freshnessMs.p99}, ${x.decisionLagMs?.p99 ?? '-'}, ${x.backlogAtEnd}${x.passed ? '' : ' ✗'}`).join('; ')} |`);
    }
  }
  lines.push('', `ratioToNaive ${report.ratioToNaive}, ratioToFloor ${report.ratioToFloor} (${report.ratioBasis}); CPU per heartbeat naive/designed ${report.cpuPerHeartbeat.naiveOverDesigned}, designed/floor ${report.cpuPerHeartbeat.designedOverFloor}`);
  return lines.join('\n');
}

// ---- command line

/** A few seconds of a few hundred robots: `npm test` runs it to see that the benchmark works. */
export const smokeOptions: Partial<BenchOptions> = { robots: 200, durationSeconds: 10, modes: ['designed', 'floor'], fillerDevices: 1000, connectPerSecond: 100, settleSeconds: 3 };

export function parseArgs(argv: string[]): Partial<BenchOptions> {
  const out: Partial<BenchOptions> = {};
  const number = (flag: string, value: string | undefined) => {
    const n = Number(value);
    if (!Number.isFinite(n) || n <= 0) throw new Error(`${flag}: expected a positive number, got ${value}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = () => argv[++i];
    switch (flag) {
      case '--robots': out.robots = Math.floor(number(flag, value())); break;
      case '--rate': out.rate = number(flag, value()); break;
      case '--duration': out.durationSeconds = number(flag, value()); break;
      case '--json': out.json = value(); break;
      case '--step': out.step = true; break;
      case '--step-duration': out.stepDurationSeconds = number(flag, value()); break;
      case '--step-max': out.stepMaxRobots = number(flag, value()); break;
      case '--offline-after': out.offlineAfterSeconds = number(flag, value()); break;
      case '--temporal-nice': out.temporalNice = Number(value()); break;
      case '--temporal-gogc': out.temporalGogc = number(flag, value()); break;
      case '--modes': out.modes = value().split(',').map(parseMode); break;
      case '--connect-rate': out.connectPerSecond = number(flag, value()); break;
      case '--settle': out.settleSeconds = Number(value()); break;
      case '--cache-size': out.cacheSize = Math.floor(number(flag, value())); break;
      case '--list-route': out.listRoute = value(); if (!out.listRoute.startsWith('/')) throw new Error('--list-route takes a path, e.g. /v1/fleet-devices?pageSize=1'); break;
      case '--source': out.source = oneOf(flag, value(), heartbeatSources); break;
      case '--broker': out.broker = oneOf(flag, value(), brokers); break;
      case '--ingest-workers': out.ingestWorkers = Math.floor(number(flag, value())); break;
      case '--amqp': out.amqp = true; break;
      case '--temporal': out.temporal = oneOf(flag, value(), temporalServers); break;
      case '--workers': out.workers = Math.floor(number(flag, value())); break;
      case '--smoke': Object.assign(out, smokeOptions); break;
      default: throw new Error(`unknown option ${flag} (see docs/performance.md)`);
    }
  }
  return out;
}

function oneOf<T extends string>(flag: string, text: string | undefined, values: readonly T[]): T {
  if (!values.includes(text as T)) throw new Error(`${flag}: expected ${values.join(' or ')}, got ${text}`);
  return text as T;
}

function parseMode(text: string): IngestMode {
  const byLetter: Record<string, IngestMode> = { a: 'designed', b: 'naive', c: 'floor' };
  const mode = byLetter[text] ?? text;
  if (!ingestModes.includes(mode as IngestMode)) throw new Error(`--modes: ${text} is not one of a,b,c or ${ingestModes.join(',')}`);
  return mode as IngestMode;
}

const pct = (share: number) => round(share * 100, 1);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

if (require.main === module) {
  const interrupt = () => void Promise.allSettled([...runningStacks].map((s) => s.stop())).then(() => process.exit(130));
  process.once('SIGINT', interrupt);
  process.once('SIGTERM', interrupt);
  runBenchmark(parseArgs(process.argv.slice(2))).then(
    () => process.exit(0),
    (error) => {
      console.error(error);
      process.exit(1);
    },
  );
}
