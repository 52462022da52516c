import { randomInt, randomUUID } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { exchangeName } from '../../outbox/messages';
import { findMosquitto, repoRoot, startProcessStack, type PieceName, type ProcessStack, type TemporalKind } from '../support/processes';
import { AmqpConsumer, RABBITMQCTL, rabbitmqctl } from '../support/rabbitmq';
import { workflowIds } from '../../temporal.config';
import { sleep, waitUntil, workflowTaskFailure, type FleetLoad } from './fleet-load';
import { apiClient, drainAndAudit, lidCycles, lidRobots, rollout, startFaultLoad, type LidCycles, type Work } from './scenarios';
import { faultTypes, planFaults, type PlannedFault } from './soak-plan';

/**
 * `npm run soak -- --minutes M [--seed S] [--temporal postgres|dev] [--workers N]`: the fault
 * suite's process stack under the fault suite's load for M minutes, with faults drawn from a seed
 * (soak-plan.ts) while lid cycles, rollouts and API commands keep being started in rounds. Then the
 * faults stop, everything drains, and the fault suite's audits run. Prints a report; exits 1 on
 * any problem. With AMQP_URL, the outbox publisher runs as a piece, RabbitMQ is stopped now and
 * then (`rabbitmqctl stop_app` on RABBITMQ_NODENAME, default the machine's node), and every event
 * must reach a consumer.
 */

const { values: args } = parseArgs({
  options: {
    minutes: { type: 'string', default: '3' },
    seed: { type: 'string' },
    temporal: { type: 'string', default: 'postgres' },
    workers: { type: 'string', default: '2' },
  },
});
const minutes = Number(args.minutes);
const seed = args.seed === undefined ? randomInt(2 ** 31) : Number(args.seed);
const temporal = args.temporal as TemporalKind;
const workerCount = Number(args.workers);
if (!(minutes > 0) || !Number.isInteger(seed) || !['postgres', 'dev'].includes(temporal) || !(workerCount >= 1)) {
  console.error('usage: npm run soak -- --minutes M [--seed S] [--temporal postgres|dev] [--workers N]');
  process.exit(2);
}

const amqpUrl = process.env.AMQP_URL;
const rabbit = !!amqpUrl && !!RABBITMQCTL;
// Without Mosquitto's persistence a broker restart loses what was queued: no broker faults then.
const broker = findMosquitto() ? 'mosquitto' : 'aedes';

/** Every kind of piece, doubled where the product allows it. */
const pieces: PieceName[] = [
  ...Array.from({ length: workerCount }, (_, i): PieceName => (i === 0 ? 'worker' : `worker-${i + 1}`)),
  'ingest',
  'api',
  // 'ingest-2', 'api-2': once ingest workers share the robots' topics (their MQTT client ids are fixed) and the client spreads over APIs.
  ...(amqpUrl ? (['publisher'] as const) : []),
];

const durationMs = minutes * 60_000;
const logDir = join(repoRoot, '.data', `soak-${seed}-${process.pid}`);
const plan = planFaults({
  seed,
  durationMs,
  types: faultTypes({ pieces, pausable: pieces.filter((p) => p.startsWith('ingest')), broker: broker === 'mosquitto', rabbitmq: rabbit }),
});

type FaultRecord = { fault: PlannedFault; startedAt: number; restartAt?: number; servingAt?: number; notes: string[]; problem?: string };

// The soak's clock starts once the stack and the load are up.
let t0 = Date.now();
const elapsed = () => Date.now() - t0;
const clock = (ms: number) => `${String(Math.floor(ms / 60_000)).padStart(2, '0')}:${((ms % 60_000) / 1000).toFixed(1).padStart(4, '0')}`;
const log = (line: string) => process.stdout.write(`[soak ${clock(elapsed())}] ${line}\n`);
const firstLine = (error: unknown) => String((error as Error)?.message ?? error).split('\n')[0].slice(0, 200);

const describeFault = (f: PlannedFault) =>
  ({
    kill: `kill -9 of ${f.target}`,
    pause: `${f.target} held (SIGSTOP)`,
    'stop-temporal': 'Temporal stopped (SIGTERM)',
    'kill-temporal': 'Temporal killed (kill -9)',
    'stop-postgres': 'PostgreSQL stopped',
    'stop-broker': `MQTT broker (${broker}) stopped`,
    'stop-rabbitmq': 'RabbitMQ stopped (rabbitmqctl stop_app)',
  })[f.kind];

async function main(): Promise<number> {
  log(`seed ${seed}; ${minutes} min; Temporal ${temporal === 'postgres' ? 'on PostgreSQL' : 'dev server'}; pieces ${pieces.join(', ')}; broker ${broker}; RabbitMQ ${rabbit ? 'on' : amqpUrl ? 'on, never stopped (no rabbitmqctl)' : 'off (AMQP_URL unset)'}`);
  log(`repeat with: npm run soak -- --minutes ${minutes} --seed ${seed} --temporal ${temporal} --workers ${workerCount}`);
  log(`${plan.length} faults planned: ${plan.map((f) => `${clock(f.atMs)} ${describeFault(f)} ${(f.downMs / 1000).toFixed(1)} s`).join('; ')}`);

  const eventsEnv = `soak-${seed}-${process.pid}`;
  const stack = await startProcessStack({
    broker,
    temporal,
    pieces,
    // Commands and lid cycles may wait out several faults in a row; wrong PINs are typed all along,
    // so the keypad must never lock; and a robot is unheard for at most about a minute (a broker or
    // ingest down, then a restart on a busy machine), so an offline within two minutes is a bug.
    env: { COMMAND_TIMEOUT_SECONDS: '600', PIN_LOCKOUT_ATTEMPTS: '1000000', OFFLINE_AFTER_SECONDS: '120', EVENTS_ENV: eventsEnv },
  });
  const consumer = amqpUrl ? await new AmqpConsumer(amqpUrl, `soak-events-${randomUUID()}`, exchangeName(eventsEnv), ['#']).start() : null;
  let load: FleetLoad | null = null;
  const stopAll = async () => {
    await load?.stop();
    await consumer?.stop({ deleteExchange: true }).catch(() => undefined);
    await stack.stop();
  };
  process.once('SIGINT', () => void stopAll().finally(() => process.exit(130)));
  process.once('SIGTERM', () => void stopAll().finally(() => process.exit(143)));
  try {
    log('stack up; starting the load');
    load = await startFaultLoad(stack);
    return await soak(stack, load, consumer);
  } finally {
    await stopAll();
  }
}

async function soak(stack: ProcessStack, load: FleetLoad, consumer: AmqpConsumer | null): Promise<number> {
  t0 = Date.now();
  const problems: string[] = [];
  const problem = (what: string) => {
    problems.push(`${clock(elapsed())} ${what}`);
    log(`PROBLEM ${what}`);
  };

  // Work in rounds for as long as the faults go on: lid cycles on six robots, rollouts to groups of five, an API client on four.
  let stopping = false;
  const lidRounds: LidCycles[] = [];
  const rollouts: Work[] = [];
  // A round that never ends is a problem (the audit says more at the end); the next one starts all the same.
  const lidLoop = (async () => {
    for (let round = 1; !stopping; round++) {
      const cycles = await lidCycles(stack, load, load.serials.slice(1, 7), 1500, round);
      lidRounds.push(cycles);
      await cycles.done().catch(async (error) => {
        const failing = await Promise.all(cycles.serials.map(async (s) => workflowTaskFailure(stack.temporal.workflow.getHandle(workflowIds.robot(s))).then((f) => (f ? ` ${s}${f}` : ''))));
        problem(`lid round ${round}: ${String(error.message).slice(0, 3000)}${failing.join('')}`);
      });
    }
  })().catch((error) => problem(`lid cycles stopped: ${firstLine(error)}`));
  const rolloutLoop = (async () => {
    for (let round = 1; !stopping; round++) {
      const group = load.serials.slice(10 + (round % 2) * 5, 15 + (round % 2) * 5);
      const deployment = await rollout(stack, group, 8, `2.${round}.0`);
      rollouts.push(deployment);
      await deployment.done().catch((error) => problem(`rollout ${round} (${deployment.deploymentId}): ${String(error.message).slice(0, 3000)}`));
    }
  })().catch((error) => problem(`rollouts stopped: ${firstLine(error)}`));
  const client = apiClient(stack, load, load.serials.slice(20, 24));

  // One fault at a time per target: a fault whose target is still busy waits for it.
  const busy = new Map<string, Promise<void>>();
  const exclusive = (target: string, run: () => Promise<void>) => {
    const done = (busy.get(target) ?? Promise.resolve()).then(run);
    busy.set(target, done.catch(() => undefined));
    return done;
  };
  /** Starts something again as a supervisor would, until it serves. */
  const supervised = async (what: string, start: () => Promise<void>, notes: string[]) => {
    const deadline = Date.now() + 600_000;
    for (let attempt = 1; ; attempt++) {
      try {
        return await start();
      } catch (error) {
        if (Date.now() > deadline) throw new Error(`${what} did not start again within 10 minutes: ${firstLine(error)}`, { cause: error });
        notes.push(`start ${attempt} failed: ${firstLine(error)}`);
        await sleep(3000);
      }
    }
  };
  const startAgain = (target: string, notes: string[]) => {
    if (target === 'temporal') return supervised('Temporal', () => stack.startTemporal(), notes);
    if (target === 'postgres') return supervised('PostgreSQL', () => stack.startPostgres(), notes);
    if (target === 'broker') return supervised('the broker', () => stack.startBroker(), notes);
    if (target === 'rabbitmq') return supervised('RabbitMQ', () => rabbitmqctl('start_app'), notes);
    return supervised(target, () => stack.start(target as PieceName), notes);
  };

  const records: FaultRecord[] = [];
  const inject = async (fault: PlannedFault) => {
    const record: FaultRecord = { fault, startedAt: elapsed(), notes: [] };
    records.push(record);
    log(`fault: ${describeFault(fault)} for ${(fault.downMs / 1000).toFixed(1)} s${fault.atMs + 1000 < record.startedAt ? ` (planned at ${clock(fault.atMs)})` : ''}`);
    try {
      if (fault.kind === 'kill') await stack.kill(fault.target as PieceName);
      else if (fault.kind === 'pause') stack.pause(fault.target as PieceName);
      else if (fault.kind === 'stop-temporal') await stack.stopTemporal();
      else if (fault.kind === 'kill-temporal') await stack.killTemporal();
      else if (fault.kind === 'stop-postgres') await stack.stopPostgres();
      else if (fault.kind === 'stop-broker') await stack.stopBroker();
      else await rabbitmqctl('stop_app');
      await sleep(fault.downMs);
      record.restartAt = elapsed();
      if (fault.kind === 'pause') stack.resume(fault.target as PieceName);
      else await startAgain(fault.target, record.notes);
      record.servingAt = elapsed();
      log(`back: ${fault.target} after ${describeFault(fault)}, serving ${((record.servingAt - record.restartAt) / 1000).toFixed(1)} s after its restart${record.notes.length ? ` (${record.notes.join('; ')})` : ''}`);
    } catch (error) {
      record.problem = firstLine(error);
      problem(`${describeFault(fault)}: ${record.problem}`);
    }
  };

  // A piece or server that exits by itself is a problem; it is started again so that the soak goes on.
  let watching = true;
  const restarts: string[] = [];
  const watchdog = (async () => {
    while (watching) {
      for (const name of stack.crashedNames()) {
        const crash = stack.crashed().find((c) => c.startsWith(name) || c.includes(`the ${name === 'broker' ? broker : 'Temporal'}`)) ?? name;
        // Its whole output (the last 20,000 characters) for the report's reader.
        const file = join(logDir, `${clock(elapsed()).replace(':', 'm')}s-${name}.log`);
        mkdirSync(logDir, { recursive: true });
        writeFileSync(file, name === 'broker' || name === 'temporal' ? crash : stack.output(name as PieceName));
        problem(`${name} exited by itself (its output: ${file}): ${crash.slice(-1500)}`);
        await exclusive(name, () => startAgain(name, restarts)).catch((error) => problem(`${name} not started again: ${firstLine(error)}`));
      }
      await sleep(2000);
    }
  })();

  const progress = setInterval(
    () => log(`progress: ${load.count} heartbeats, ${lidRounds.length} lid rounds, ${rollouts.length} rollouts, ${client.commands} commands, ${records.length} faults`),
    60_000,
  );
  const running = new Set<Promise<void>>();
  for (const fault of plan) {
    await sleep(Math.max(0, fault.atMs - elapsed()));
    if (elapsed() >= durationMs) break;
    const run = exclusive(fault.target, () => (elapsed() < durationMs + 60_000 ? inject(fault) : Promise.resolve()));
    running.add(run);
    void run.finally(() => running.delete(run));
  }
  await sleep(Math.max(0, durationMs - elapsed()));
  log(`${minutes} min up: no new faults; waiting for ${running.size} under way`);
  await Promise.all(running);
  watching = false;
  await watchdog;
  clearInterval(progress);
  const faultsOverAt = elapsed();

  log('faults over: finishing the rounds under way, then draining');
  stopping = true;
  await Promise.all([lidLoop, rolloutLoop]);
  const work: Work[] = [...lidRounds, lidRobots(stack, load, lidRounds), ...rollouts];
  const drained = await drainAndAudit(stack, load, work, client);
  problems.push(...drained.problems);

  let events = await stack.prisma.domainEvent.count();
  const delivery: string[] = [];
  if (consumer) {
    const outbox = () => stack.prisma.eventOutbox.count();
    await waitUntil('the outbox emptied', async () => (await outbox()) === 0, 180_000, async () => `${await outbox()} events left`).catch((e) => problems.push(firstLine(e)));
    const ids = (await stack.prisma.domainEvent.findMany({ select: { id: true } })).map((e) => e.id);
    events = ids.length;
    const missing = () => {
      const got = new Set(consumer.distinct());
      return ids.filter((id) => !got.has(id));
    };
    await waitUntil('every event delivered to RabbitMQ', async () => missing().length === 0, 120_000).catch(() => undefined);
    const lost = missing();
    if (lost.length > 0) problems.push(`${lost.length} of ${ids.length} events never reached RabbitMQ, e.g. ${lost.slice(0, 5).join(', ')}`);
    const known = new Set(ids);
    const strangers = consumer.distinct().filter((id) => !known.has(id));
    if (strangers.length > 0) problems.push(`${strangers.length} messages on the exchange that are no recorded event, e.g. ${strangers.slice(0, 5).join(', ')}`);
    delivery.push(`RabbitMQ: ${consumer.distinct().length} events delivered, ${consumer.deliveries.length - consumer.distinct().length} of them more than once (consumers deduplicate by message id)`);
  }
  if (lidRounds.length === 0) problems.push('no lid cycle was started');
  if (problems.length > 0) {
    mkdirSync(logDir, { recursive: true });
    for (const name of stack.pieces) writeFileSync(join(logDir, `${name}.log`), stack.output(name));
    problems.push(`the pieces' output (last 20,000 characters each) is in ${logDir}`);
  }
  if (rollouts.length === 0) problems.push('no rollout was started');

  const report = [
    '',
    '=== SOAK REPORT ===',
    `seed ${seed}; ${minutes} min of faults (${clock(faultsOverAt)} with the last ones ending), then ${clock(elapsed() - faultsOverAt)} to drain and audit`,
    `stack: Temporal ${temporal === 'postgres' ? 'on PostgreSQL' : 'dev server'}; pieces ${pieces.join(', ')}; broker ${broker}; RabbitMQ ${rabbit ? 'on' : 'off'}`,
    `faults injected (${records.length} of ${plan.length} planned):`,
    ...records.map((r) => {
      const batch = records.filter((o) => o.fault.batch === r.fault.batch).length;
      const down = r.restartAt === undefined ? '' : `, down ${((r.restartAt - r.startedAt) / 1000).toFixed(1)} s`;
      const back = r.servingAt === undefined || r.restartAt === undefined ? '' : `, serving ${((r.servingAt - r.restartAt) / 1000).toFixed(1)} s after its restart`;
      return `  ${clock(r.startedAt)} ${describeFault(r.fault)}${down}${back}${batch > 1 ? ` (one of ${batch} at once)` : ''}${r.notes.length ? `; ${r.notes.join('; ')}` : ''}${r.problem ? `; FAILED: ${r.problem}` : ''}`;
    }),
    ...(restarts.length ? [`restarts after crashes: ${restarts.join('; ')}`] : []),
    `work done: ${load.count} heartbeats from ${load.serials.length} robots; ${lidRounds.reduce((n, r) => n + r.serials.length, 0)} lid cycles in ${lidRounds.length} rounds; ${client.commands} commands (HONK) and ${client.reads} reads by the API client, ${client.outages.length} of its requests refused or answered 503; ${rollouts.length} rollouts; ${events} events`,
    ...delivery,
    `the robot workflows caught up ${(drained.drainMs / 1000).toFixed(1)} s after the load stopped`,
    `problems found: ${problems.length === 0 ? 'none' : problems.length}`,
    ...problems.map((p) => `  - ${p}`),
    '',
  ];
  process.stdout.write(report.join('\n'));
  return problems.length === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
