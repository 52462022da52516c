import { fork } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import { Client as TemporalClient, Connection } from '@temporalio/client';
import { temporal as proto } from '@temporalio/proto';
import { Client as PgClient } from 'pg';
import { ingestModes, type IngestMode } from '../ingest/heartbeat-pipeline';
import { workflowIds } from '../temporal.config';
import { percentiles, type LoadOptions, type LoadProgress, type LoadResult } from './load-generator';
import { ProcessSampler, round } from './proc';
import { repoRoot, startStack, type Stack } from './stack';

/**
 * `npm run bench`: the same MQTT load against (a) the project as designed, (b) a naive mode that
 * signals and writes every heartbeat one by one, and (c) the floor, batched writes with no
 * Temporal; each against a fresh stack, one after the other on this machine. See README
 * "Performance" for what is measured and how.
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
  sampleSize: number;
  silentShare: number;
  connectPerSecond: number;
  fillerDevices: number;
  listEveryMs: number;
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
  sampleSize: 100,
  silentShare: 0.01,
  connectPerSecond: 50,
  fillerDevices: 10_000,
  listEveryMs: 200,
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
const LIST_FILTER = 'online=true AND batteryPercent>20';
const STEP_LADDER = [250, 500, 1000, 2000, 3000, 4000, 5000, 6000, 8000, 10_000, 12_000, 15_000, 20_000];

export type ProcessFigures = Record<string, { cpuSeconds: number; cpuPercent: number; peakMemoryMb: number }>;

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
  freshnessMs: { p50: number; p99: number; max: number; heartbeats: number; neverSeen: number };
  robotsBehind: number;
  offlineDetectionMs: { robots: number; missed: number; p50: number; max: number; offlineAfterMs: number } | null;
  temporalPerRobotPerMinute: { signals: number; workflowTasks: number; activities: number; historyEvents: number; sampledRobots: number } | null;
  fleetList: { route: string; requests: number; errors: number; p50: number; p99: number; max: number };
  processes: ProcessFigures;
  cpuMsPerThousandHeartbeats: number;
  generator: { planned: number; behindMs: { p50: number; p99: number; max: number }; cpuPercent: number; stateChanges: LoadResult['stateChanges'] };
  loadAverageBefore: number[];
  passed: boolean;
  problems: string[];
};

export type StepResult = { mode: IngestMode; steps: Pick<ModeRun, 'robots' | 'offeredPerSecond' | 'acceptedPerSecond' | 'lost' | 'freshnessMs' | 'cpuMsPerThousandHeartbeats' | 'passed' | 'problems'>[]; sustainedPerSecond: number };

export async function runBenchmark(partial: Partial<BenchOptions> = {}): Promise<Record<string, unknown>> {
  const opts: BenchOptions = { ...defaultOptions, ...partial };
  const machine = { nproc: cpus().length, cpuModel: cpus()[0]?.model ?? 'unknown', memoryGb: round(totalmem() / 2 ** 30, 1), node: process.version, loadAverageAtStart: loadavg().map((x) => round(x, 2)) };
  opts.log(`machine: ${machine.nproc} cores (${machine.cpuModel}), ${machine.memoryGb} GiB; load average ${machine.loadAverageAtStart.join(' ')}`);

  const runs: Partial<Record<IngestMode, ModeRun>> = {};
  for (const mode of opts.modes) {
    runs[mode] = await runMode(mode, opts.robots, opts.durationSeconds, opts);
    opts.log(summaryLine(runs[mode]!));
  }

  const steps: Partial<Record<IngestMode, StepResult>> = {};
  if (opts.step) {
    for (const mode of opts.modes) {
      const result: StepResult = { mode, steps: [], sustainedPerSecond: 0 };
      for (const robots of STEP_LADDER.filter((n) => n <= opts.stepMaxRobots)) {
        const run = await runMode(mode, robots, opts.stepDurationSeconds, opts);
        opts.log(`step ${summaryLine(run)}`);
        const { offeredPerSecond, acceptedPerSecond, lost, freshnessMs, cpuMsPerThousandHeartbeats, passed, problems } = run;
        result.steps.push({ robots, offeredPerSecond, acceptedPerSecond, lost, freshnessMs, cpuMsPerThousandHeartbeats, passed, problems });
        if (!passed) break;
        result.sustainedPerSecond = offeredPerSecond;
      }
      steps[mode] = result;
    }
  }

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
  const ratio = (a?: number, b?: number) => (a !== undefined && b ? round(a / b, 2) : null);
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
    ratioToFloor: ratio(rateOf('designed'), rateOf('floor')),
    ratioBasis: opts.step ? 'highest sustained heartbeats/s (stepped)' : 'heartbeats/s accepted in the single run (0 when the run failed)',
    cpuPerHeartbeat: { naiveOverDesigned: ratio(cpu('naive'), cpu('designed')), designedOverFloor: ratio(cpu('designed'), cpu('floor')) },
    sustainedPerSecond: opts.step ? Object.fromEntries(Object.entries(steps).map(([m, s]) => [m, s!.sustainedPerSecond])) : null,
    machine,
    modes: runs,
    steps: opts.step ? steps : null,
  };
}

async function runMode(mode: IngestMode, robots: number, durationSeconds: number, opts: BenchOptions): Promise<ModeRun> {
  const label = `${mode} ${robots}x${opts.rate}Hz`;
  // Production's default: it also sets how often a steady robot is signalled (every 30 s).
  const offlineAfterSeconds = opts.offlineAfterSeconds ?? 60;
  const loadAverageBefore = loadavg().map((x) => round(x, 2));
  const problems: string[] = [];
  opts.progress(`${label}: starting a fresh stack...`);
  const stack = await startStack({ mode, dir: join(repoRoot, '.data', `bench-${process.pid}`, mode), offlineAfterSeconds });
  const db = new PgClient({ connectionString: stack.databaseUrl });
  await db.connect();
  try {
    await insertFillerDevices(db, opts.fillerDevices);
    const listRoute = await chooseListRoute(stack);
    const generator = fork(join(__dirname, 'load-generator.ts'), [], { execArgv: ['--import', 'tsx'], cwd: repoRoot, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const sampler = new ProcessSampler({ ...stack.pids, 'load generator': generator.pid! });
    sampler.start();
    const loadOptions: LoadOptions = {
      mqttUrl: stack.mqttUrl,
      robots,
      rate: opts.rate,
      durationSeconds,
      prefix: 'BENCH',
      sampleSize: Math.min(opts.sampleSize, robots),
      silentShare: opts.silentShare,
      offlineAfterSeconds,
      connectPerSecond: opts.connectPerSecond,
    };

    let poller: FreshnessPoller | null = null;
    let lister: ListLatency | null = null;
    let loadStart = 0;
    const result = await new Promise<LoadResult>((resolve, reject) => {
      generator.on('message', (message: LoadProgress | LoadResult) => {
        if (message.type === 'result') return resolve(message);
        if (message.sampleSerials) {
          loadStart = Date.now();
          poller = new FreshnessPoller(db, message.sampleSerials);
          lister = new ListLatency(stack, listRoute, opts.listEveryMs);
        }
        const elapsed = loadStart ? Math.round((Date.now() - loadStart) / 1000) : 0;
        const head = `${label}: ${message.phase} ${message.phase === 'connecting' ? `${message.connected}/${robots} connected` : `${elapsed}/${durationSeconds}s`}`;
        void ingestCounter(stack, 'fleet_ingest_heartbeats_written_total').catch(() => NaN).then((written) =>
          opts.progress(`${head} published ${message.published} acked ${message.acked} written ${written} generator behind ${message.behindMs}ms`),
        );
      });
      generator.once('exit', (code) => reject(new Error(`load generator exited (${code}) before reporting`)));
      generator.send(loadOptions);
    });
    const loadEnd = result.lastPublishAt;
    (lister as ListLatency | null)?.stop();

    // Drain: everything the broker acknowledged should be written by the ingest worker.
    const drainBy = Date.now() + 20_000;
    let written = await ingestCounter(stack, 'fleet_ingest_heartbeats_written_total');
    while (written < result.acked && Date.now() < drainBy) {
      await sleep(200);
      written = await ingestCounter(stack, 'fleet_ingest_heartbeats_written_total');
    }
    const drainEnd = Date.now();
    await sleep(300);
    const freshnessObservations = await (poller as FreshnessPoller | null)?.stop();
    const signals = await ingestCounter(stack, 'fleet_ingest_workflow_signals_total');
    sampler.stop();

    const freshness = freshnessFrom(result.samples, freshnessObservations ?? new Map(), drainEnd);
    const robotsBehind = await robotsBehindCount(db, result.lastTimestamp);
    const offline = mode === 'floor' ? null : await offlineDetection(db, result.silent, offlineAfterSeconds * 1000);
    const loadMinutes = Math.max((loadEnd - result.firstPublishAt) / 60_000, 1 / 60);
    const work = stack.temporalAddress ? await temporalWork(stack.temporalAddress, Object.keys(result.samples).slice(0, 10), loadMinutes).catch((e) => {
      problems.push(`history sampling failed: ${(e as Error).message}`);
      return null;
    }) : null;
    if (work) work.signals = round(signals / robots / loadMinutes, 2);

    const processes = sampler.between(result.firstPublishAt, drainEnd);
    const { 'load generator': generatorFigures, ...stackFigures } = processes;
    // The API's CPU follows the fleet-list requests the benchmark makes, not the heartbeats.
    const ingestCpu = Object.entries(stackFigures).filter(([name]) => name !== 'api').reduce((sum, [, p]) => sum + p.cpuSeconds, 0);
    const lost = Math.max(0, result.acked - written);
    const seconds = (loadEnd - result.firstPublishAt) / 1000;
    const list = (lister as ListLatency | null)?.figures() ?? { route: listRoute, requests: 0, errors: 0, p50: 0, p99: 0, max: 0 };

    if (result.errors > 0) problems.push(`${result.errors} publishes not acknowledged by the broker`);
    if (lost > 0) problems.push(`${lost} heartbeats not written within 20 s of the end`);
    if (robotsBehind > 0) problems.push(`${robotsBehind} robots' last heartbeat missing from the projection`);
    if (freshness.p99 >= FRESHNESS_LIMIT_MS) problems.push(`freshness p99 ${freshness.p99} ms`);
    if (result.behindMs.p99 > 1000) problems.push(`load generator fell behind (p99 ${result.behindMs.p99} ms): offered rate not reached`);
    if (offline && offline.missed > 0) problems.push(`${offline.missed} silent robots never reported offline`);
    if (list.errors > 0) problems.push(`${list.errors} fleet list requests failed`);
    problems.push(...stack.crashed());

    return {
      mode,
      robots,
      rate: opts.rate,
      durationSeconds,
      offeredPerSecond: round(robots * opts.rate, 1),
      published: result.acked,
      accepted: written,
      lost,
      // Less the one heartbeat each robot sent as it came on shift, before the steady schedule.
      acceptedPerSecond: round(Math.max(0, Math.min(written, result.acked) - robots) / seconds, 1),
      freshnessMs: freshness,
      robotsBehind,
      offlineDetectionMs: offline,
      temporalPerRobotPerMinute: work,
      fleetList: list,
      processes: stackFigures,
      cpuMsPerThousandHeartbeats: round((ingestCpu * 1000) / Math.max(written / 1000, 0.001), 1),
      generator: { planned: result.planned, behindMs: result.behindMs, cpuPercent: generatorFigures?.cpuPercent ?? 0, stateChanges: result.stateChanges },
      loadAverageBefore,
      passed: problems.length === 0,
      problems,
    };
  } finally {
    await db.end().catch(() => undefined);
    await stack.stop();
    opts.progress('');
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
        const { rows } = await db.query<{ serial_number: string; t: string }>(
          'SELECT serial_number, (extract(epoch FROM last_heartbeat_at) * 1000)::bigint AS t FROM devices WHERE serial_number = ANY($1)',
          [serials],
        );
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

  async stop(): Promise<Map<string, { at: number; heartbeatAt: number }[]>> {
    this.running = false;
    await this.done;
    return this.seen;
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

/** Sequential fleet-list requests while the load runs. */
class ListLatency {
  private latencies: number[] = [];
  private errors = 0;
  private running = true;

  constructor(private readonly stack: Stack, private readonly route: string, everyMs: number) {
    void (async () => {
      while (this.running) {
        const started = performance.now();
        try {
          const res = await fetch(`${stack.apiUrl}${route}`, { headers: { 'x-api-key': stack.apiKey }, signal: AbortSignal.timeout(10_000) });
          await res.arrayBuffer();
          if (res.ok) this.latencies.push(performance.now() - started);
          else this.errors += 1;
        } catch {
          this.errors += 1;
        }
        await sleep(everyMs);
      }
    })();
  }

  stop(): void {
    this.running = false;
  }

  figures(): ModeRun['fleetList'] {
    const p = percentiles(this.latencies.map((x) => x * 10));
    return { route: this.route, requests: this.latencies.length + this.errors, errors: this.errors, p50: p.p50 / 10, p99: p.p99 / 10, max: p.max / 10 };
  }
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

async function insertFillerDevices(db: PgClient, count: number): Promise<void> {
  if (count <= 0) return;
  const serial = `'FILL' || lpad(i::text, 6, '0')`;
  await db.query(`INSERT INTO devices (serial_number, online, lid_is_open, network_type, signal_strength, lat, lng, last_heartbeat_at, last_seen_at, connectivity_updated_at)
    SELECT ${serial}, random() < 0.7, random() < 0.05, 'CELLULAR', -80, 37.7 + random() / 10, -122.4 + random() / 10, now(), now(), now()
    FROM generate_series(1, $1) i`, [count]);
  await db.query(`INSERT INTO device_batteries (serial_number, battery_index, charge_percent, is_charging, voltage, updated_at)
    SELECT ${serial}, 0, (random() * 100)::int, false, 48, now() FROM generate_series(1, $1) i`, [count]);
  await db.query(`INSERT INTO device_components (serial_number, component_name, status_code, updated_at)
    SELECT ${serial}, c, 'OK', now() FROM generate_series(1, $1) i, unnest(ARRAY['GPS', 'CAMERAS', 'SEGWAY_BASE', 'LTE_ROUTERS', 'EMERGENCY_BUTTON']) c`, [count]);
  await db.query('ANALYZE');
}

async function ingestCounter(stack: Stack, name: string): Promise<number> {
  const text = await (await fetch(stack.ingestMetricsUrl)).text();
  const match = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  return match ? Number(match[1]) : 0;
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

/** Temporal work of a sample of robot workflows (every run of each), per robot per minute of load. */
async function temporalWork(address: string, serials: string[], minutes: number): Promise<NonNullable<ModeRun['temporalPerRobotPerMinute']>> {
  const { EventType } = proto.api.enums.v1;
  const connection = await Connection.connect({ address });
  const client = new TemporalClient({ connection });
  const totals = { signals: 0, workflowTasks: 0, activities: 0, historyEvents: 0 };
  try {
    for (const serial of serials) {
      const handle = client.workflow.getHandle(workflowIds.robot(serial));
      let runId: string | undefined = (await handle.describe()).runId;
      // Follow the chain of runs backwards through continue-as-new.
      for (let guard = 0; runId && guard < 50; guard++) {
        const history: proto.api.history.v1.IHistory = await client.workflow.getHandle(workflowIds.robot(serial), runId).fetchHistory();
        const events: proto.api.history.v1.IHistoryEvent[] = history.events ?? [];
        totals.historyEvents += events.length;
        for (const e of events) {
          if (e.eventType === EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED) totals.signals += 1;
          if (e.eventType === EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED) totals.workflowTasks += 1;
          if (e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED) totals.activities += 1;
        }
        runId = events[0]?.workflowExecutionStartedEventAttributes?.continuedExecutionRunId || undefined;
      }
    }
  } finally {
    await connection.close();
  }
  const per = (n: number) => round(n / Math.max(serials.length, 1) / minutes, 2);
  return { signals: per(totals.signals), workflowTasks: per(totals.workflowTasks), activities: per(totals.activities), historyEvents: per(totals.historyEvents), sampledRobots: serials.length };
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
    ['lost', (r) => String(r.lost)],
    ['freshness p50/p99/max ms', (r) => `${r.freshnessMs.p50}/${r.freshnessMs.p99}/${r.freshnessMs.max}`],
    ['offline after silence p50/max ms', (r) => (r.offlineDetectionMs?.robots ? `${r.offlineDetectionMs.p50}/${r.offlineDetectionMs.max} (limit ${r.offlineDetectionMs.offlineAfterMs}+5000)` : '-')],
    ['signals/robot/min', (r) => String(r.temporalPerRobotPerMinute?.signals ?? '-')],
    ['workflow tasks/robot/min', (r) => String(r.temporalPerRobotPerMinute?.workflowTasks ?? '-')],
    ['activities/robot/min', (r) => String(r.temporalPerRobotPerMinute?.activities ?? '-')],
    ['history events/robot/min', (r) => String(r.temporalPerRobotPerMinute?.historyEvents ?? '-')],
    ['fleet list p50/p99 ms', (r) => `${r.fleetList.p50}/${r.fleetList.p99}`],
    ['CPU ms per 1000 heartbeats', (r) => String(r.cpuMsPerThousandHeartbeats)],
    ...pieces.map((p): [string, (r: ModeRun) => string] => [`${p} CPU% / MB`, (r) => (r.processes[p] ? `${r.processes[p].cpuPercent} / ${r.processes[p].peakMemoryMb}` : '-')]),
    ['load generator CPU%', (r) => String(r.generator.cpuPercent)],
    ['load average before', (r) => r.loadAverageBefore.join(' ')],
    ['passed', (r) => (r.passed ? 'yes' : `no: ${r.problems.join('; ')}`)],
  ];
  const lines = [`| | ${header.join(' | ')} |`, `|---|${header.map(() => '---').join('|')}|`, ...rows.map(([name, f]) => `| ${name} | ${runs.map(f).join(' | ')} |`)];
  if (report.steps) {
    lines.push('', '| stepped (1 Hz robots) | highest sustained/s | steps (offered/s: freshness p99 ms, lost) |', '|---|---|---|');
    for (const s of Object.values(report.steps as Record<string, StepResult>)) {
      lines.push(`| ${names[ingestModes.indexOf(s.mode)]} | ${s.sustainedPerSecond} | ${s.steps.map((x) => `${x.offeredPerSecond}: ${x.freshnessMs.p99}, ${x.lost}${x.passed ? '' : ' ✗'}`).join('; ')} |`);
    }
  }
  lines.push('', `ratioToNaive ${report.ratioToNaive}, ratioToFloor ${report.ratioToFloor} (${report.ratioBasis}); CPU per heartbeat naive/designed ${report.cpuPerHeartbeat.naiveOverDesigned}, designed/floor ${report.cpuPerHeartbeat.designedOverFloor}`);
  return lines.join('\n');
}

// ---- command line

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
      case '--modes': out.modes = value().split(',').map(parseMode); break;
      case '--connect-rate': out.connectPerSecond = number(flag, value()); break;
      case '--smoke': Object.assign(out, { robots: 200, durationSeconds: 10, modes: ['designed', 'floor'], offlineAfterSeconds: 3, fillerDevices: 1000 }); break;
      default: throw new Error(`unknown option ${flag} (see README "Performance")`);
    }
  }
  return out;
}

function parseMode(text: string): IngestMode {
  const byLetter: Record<string, IngestMode> = { a: 'designed', b: 'naive', c: 'floor' };
  const mode = byLetter[text] ?? text;
  if (!ingestModes.includes(mode as IngestMode)) throw new Error(`--modes: ${text} is not one of a,b,c or ${ingestModes.join(',')}`);
  return mode as IngestMode;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

if (require.main === module) {
  runBenchmark(parseArgs(process.argv.slice(2))).then(
    () => process.exit(0),
    (error) => {
      console.error(error);
      process.exit(1);
    },
  );
}
