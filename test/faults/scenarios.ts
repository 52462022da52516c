import { randomUUID } from 'node:crypto';
import type { ProcessStack } from '../support/processes';
import { FleetLoad, auditFleet, behind, recovered, report, sleep, waitUntil } from './fleet-load';

/**
 * Work in progress while a fault hits: lid cycles (PIN typed, UNLOCK_LID, lid opened and closed by
 * the simulated robot), a Greengrass rollout with a canary and a soak, and an API client that keeps
 * reading and sending commands (retrying a command with its requestId until it is accepted). Each
 * `audit()` returns the problems found once the work is done: a cycle or rollout stuck, an event
 * missing or doubled, a command sent twice, an API answer other than success or 503.
 */

const CYCLE_EVENTS = ['LidCycle.Started', 'LidCycle.Completed', 'LidCycle.Timeout', 'LidCycle.PinValidated'];

export type Work = { done(timeoutMs?: number): Promise<void>; audit(): Promise<string[]> };

/**
 * Sends a request until the API takes it: a 503 or a refused connection is tried again (the
 * request is idempotent: a PUT, or a POST with its requestId), any other answer is an error.
 */
export async function accepted(stack: ProcessStack, method: string, path: string, body: unknown, ok: number[], timeoutMs = 300_000): Promise<{ status: number; body: any }> {
  const deadline = Date.now() + timeoutMs;
  for (let attempt = 0; ; attempt++) {
    const res = await stack.request(method, path, body).catch((error: Error) => ({ status: 0, body: (error.cause as Error | undefined)?.message ?? error.message }));
    if (ok.includes(res.status)) return res;
    if ((res.status !== 0 && res.status !== 503) || Date.now() > deadline) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(res.body).slice(0, 300)}`);
    await sleep(Math.min(250 * 2 ** attempt, 2000));
  }
}

export type LidCycles = Work & { serials: string[]; contexts: Map<string, string> };

/**
 * A merchant PIN on each robot, typed on its keypad one robot after another, `everyMs` apart: each
 * robot unlocks, opens its lid and closes it, one lid cycle with the PIN's context. A `round`
 * (the soak runs them one after another on the same robots) gets PINs and contexts of its own, and
 * waits for the cycles recorded since it began; `lidRobots` audits the robots' cycles as a whole.
 */
export async function lidCycles(stack: ProcessStack, load: FleetLoad, serials: string[], everyMs = 1500, round?: number): Promise<LidCycles> {
  const since = new Date();
  const contexts = new Map(serials.map((s) => [s, round === undefined ? `ctx-${s}` : `ctx-${s}-r${round}`]));
  const pins = new Map(serials.map((s, i) => [s, String(round === undefined ? 4000 + i * 7 : 1000 + ((i * 7919 + round * 131) % 9000))]));
  for (const [serial, pin] of pins) {
    const body = { pin, pinType: 'MERCHANT', contextId: contexts.get(serial), expiresAt: new Date(Date.now() + 3_600_000).toISOString() };
    await accepted(stack, 'PUT', `/v1/devices/${serial}/unlock-pin`, body, [200]);
  }
  const typing = (async () => {
    for (const [serial, pin] of pins) {
      load.sim.enterPin(serial, pin);
      await sleep(everyMs);
    }
  })();
  const cyclesOf = (serial: string) => stack.prisma.lidCycle.findMany({ where: { serialNumber: serial, createdAt: { gte: since } }, orderBy: { startedAt: 'asc' } });
  return {
    serials,
    contexts,
    async done(timeoutMs = 240_000) {
      await typing;
      await waitUntil(
        'lid cycles ended',
        async () => {
          for (const serial of serials) {
            const cycles = await cyclesOf(serial);
            if (cycles.length === 0 || cycles.some((c) => c.status === 'INIT') || load.sim.robot(serial).lidOpen) return false;
          }
          return true;
        },
        timeoutMs,
        async () => JSON.stringify(await Promise.all(serials.map(async (s) => [s, (await cyclesOf(s)).map((c) => c.status), load.sim.robot(s).commands.map((c) => c.type)]))),
      );
    },
    async audit() {
      const problems: string[] = [];
      for (const serial of serials) {
        const context = contexts.get(serial)!;
        // Cycles without this context (forced, or another round's) are lidRobots' to judge.
        const cycles = await stack.prisma.lidCycle.findMany({ where: { serialNumber: serial, contextId: context } });
        const shown = cycles.map((c) => `${c.status}${c.forced ? ' forced' : ''} ${c.contextId}`);
        if (JSON.stringify(shown) !== JSON.stringify([`COMPLETE ${context}`])) problems.push(`${serial}: lid cycles ${JSON.stringify(shown)}, expected one COMPLETE with ${context}`);
        const counts = await eventCounts(stack, serial, CYCLE_EVENTS, context);
        const want: Record<string, number> = { 'LidCycle.Started': 1, 'LidCycle.Completed': 1, 'LidCycle.Timeout': 0, 'LidCycle.PinValidated': 1 };
        for (const [type, n] of Object.entries(want)) if ((counts[type] ?? 0) !== n) problems.push(`${serial}: ${counts[type] ?? 0} ${type} with ${context}, expected ${n}`);
        const unlocks = await stack.prisma.deviceCommand.findMany({ where: { serialNumber: serial, commandType: 'UNLOCK_LID', contextId: context }, select: { commandId: true } });
        if (unlocks.length !== 1) problems.push(`${serial}: ${unlocks.length} UNLOCK_LID commands stored with ${context}, expected 1`);
        for (const u of unlocks) {
          const res = await stack.api(`/v1/devices/${serial}/commands/${u.commandId}`);
          if (res.body?.status !== 'EXECUTED') problems.push(`${serial}: UNLOCK_LID ${u.commandId} is ${res.body?.status}, expected EXECUTED`);
          if (!load.sim.robot(serial).commands.some((c) => c.commandId === u.commandId)) problems.push(`${serial}: UNLOCK_LID ${u.commandId} never reached the robot`);
        }
      }
      return problems;
    },
  };
}

/**
 * The lid robots as a whole, after all their rounds: each lid cycle is one of the rounds' (none
 * forced, none timed out, in order), no PIN was rejected, and the robot received one distinct
 * UNLOCK_LID per round.
 */
export function lidRobots(stack: ProcessStack, load: FleetLoad, rounds: LidCycles[]): Work {
  return {
    async done() {},
    async audit() {
      const problems: string[] = [];
      const serials = [...new Set(rounds.flatMap((r) => r.serials))];
      for (const serial of serials) {
        const want = rounds.filter((r) => r.serials.includes(serial)).map((r) => `COMPLETE ${r.contexts.get(serial)}`);
        const cycles = await stack.prisma.lidCycle.findMany({ where: { serialNumber: serial }, orderBy: { startedAt: 'asc' } });
        const shown = cycles.map((c) => `${c.status}${c.forced ? ' forced' : ''} ${c.contextId}`);
        if (JSON.stringify(shown) !== JSON.stringify(want)) problems.push(`${serial}: lid cycles ${JSON.stringify(shown)}, expected ${JSON.stringify(want)}`);
        const rejected = (await eventCounts(stack, serial, ['LidCycle.PinRejected']))['LidCycle.PinRejected'] ?? 0;
        if (rejected !== 0) problems.push(`${serial}: ${rejected} LidCycle.PinRejected, expected none`);
        const unlocks = load.sim.robot(serial).commands.filter((c) => c.type === 'UNLOCK_LID').length;
        if (unlocks !== want.length) problems.push(`${serial}: the robot received ${unlocks} distinct UNLOCK_LID commands, expected ${want.length}`);
      }
      return problems;
    },
  };
}

const account = '000000000000';
const NAVIGATION = 'com.coco.Navigation';

/** A rollout of `version` to a thing group of `serials`: the first is the canary, soaked `soakSeconds`, then the rest. */
export async function rollout(stack: ProcessStack, serials: string[], soakSeconds = 8, version = '2.0.0'): Promise<Work & { deploymentId: string }> {
  const name = `faults-${randomUUID().slice(0, 8)}`;
  await stack.greengrass.control({ action: 'setThingGroup', name, thingNames: serials });
  const groupArn = `arn:aws:iot:${stack.greengrass.region}:${account}:thinggroup/${name}`;
  const body = { targetArn: groupArn, components: { [NAVIGATION]: { componentVersion: version } }, rollout: { canaryDevices: 1, soakSeconds }, requestId: name };
  const res = await accepted(stack, 'POST', '/v1/deployments', body, [200, 201]);
  const { deploymentId } = res.body;
  const view = () => stack.api(`/v1/deployments/${deploymentId}`);
  return {
    deploymentId,
    async done(timeoutMs = 240_000) {
      await waitUntil('rollout ended', async () => ['SUCCEEDED', 'FAILED', 'CANCELLED'].includes((await view()).body?.status), timeoutMs, async () => JSON.stringify((await view()).body));
    },
    async audit() {
      const problems: string[] = [];
      const { body: done } = await view();
      if (done.status !== 'SUCCEEDED') problems.push(`rollout ${deploymentId}: ${done.status} (${done.reason}), expected SUCCEEDED`);
      const devices = (done.devices ?? []).map((d: { serial: string; status: string }) => `${d.serial}:${d.status}`);
      if (JSON.stringify(devices) !== JSON.stringify(serials.map((s) => `${s}:SUCCEEDED`))) problems.push(`rollout ${deploymentId}: devices ${JSON.stringify(devices)}`);
      const inGreengrass = stack.greengrass.deployments().filter((d) => d.tags['fleet-deployment-id'] === deploymentId).map((d) => d.targetArn);
      const wantTargets = [`arn:aws:iot:${stack.greengrass.region}:${account}:thing/${serials[0]}`, groupArn];
      if (JSON.stringify(inGreengrass) !== JSON.stringify(wantTargets)) problems.push(`rollout ${deploymentId}: Greengrass deployments to ${JSON.stringify(inGreengrass)}, expected one each to ${JSON.stringify(wantTargets)}`);
      const events = await stack.prisma.$queryRaw<{ type: string; stage: string | null }[]>`
        SELECT type, data->>'stage' AS stage FROM domain_events WHERE data->>'deploymentId' = ${deploymentId} ORDER BY seq`;
      const shown = events.map((e) => (e.stage ? `${e.type}:${e.stage}` : e.type));
      const want = ['Rollout.Started', 'Rollout.StageCompleted:CANARY', 'Rollout.StageCompleted:ROLLOUT', 'Rollout.Succeeded'];
      if (JSON.stringify(shown) !== JSON.stringify(want)) problems.push(`rollout ${deploymentId}: events ${JSON.stringify(shown)}, expected ${JSON.stringify(want)}`);
      return problems;
    },
  };
}

/**
 * A client of the API throughout the fault: reads a device every `readEveryMs`, and sends a HONK to
 * one of `serials` every `commandEveryMs`, repeating each request (same requestId) until the API
 * accepts it. Keeps every answer that was neither a success nor a 503 (or a refused connection).
 */
export type ApiClient = ReturnType<typeof apiClient>;

export function apiClient(stack: ProcessStack, load: FleetLoad, serials: string[], opts = { readEveryMs: 250, commandEveryMs: 1500 }) {
  const unexpected: string[] = [];
  const outages: { status: string; at: number }[] = [];
  const sent: { serial: string; requestId: string; commandId?: string }[] = [];
  let reads = 0;
  let stopped = false;
  const answer = async (method: string, path: string, body?: unknown): Promise<{ status: number; body: any } | null> => {
    try {
      const res = await stack.request(method, path, body);
      if (res.status === 503) outages.push({ status: '503', at: Date.now() });
      else if (res.status >= 300) unexpected.push(`${method} ${path}: ${res.status} ${JSON.stringify(res.body).slice(0, 300)}`);
      return res;
    } catch (error) {
      // fetch's own error hides the reason (ECONNREFUSED, a timeout) in its cause.
      const cause = (error as Error).cause as Error | undefined;
      outages.push({ status: cause?.message ?? (error as Error).message, at: Date.now() });
      return null;
    }
  };
  const reading = (async () => {
    for (let i = 0; !stopped; i++) {
      await answer('GET', `/v1/devices/${load.serials[i % load.serials.length]}`);
      reads += 1;
      await sleep(opts.readEveryMs);
    }
  })();
  const commanding = (async () => {
    for (let i = 0; !stopped; i++) {
      const entry = { serial: serials[i % serials.length], requestId: `faults-${randomUUID()}`, commandId: undefined as string | undefined };
      sent.push(entry);
      for (let attempt = 0; entry.commandId === undefined; attempt++) {
        const res = await answer('POST', `/v1/devices/${entry.serial}/commands`, { commandType: 'HONK', requestId: entry.requestId });
        if (res && (res.status === 200 || res.status === 202)) entry.commandId = res.body.commandId;
        else await sleep(Math.min(250 * 2 ** attempt, 2000));
      }
      await sleep(opts.commandEveryMs);
    }
  })();
  return {
    outages,
    get reads() {
      return reads;
    },
    async stop() {
      stopped = true;
      await Promise.all([reading, commanding]);
    },
    get commands() {
      return sent.length;
    },
    async done(timeoutMs = 240_000) {
      // One query for all (a soak sends thousands): the audit reads each through the API.
      const ids = sent.map((c) => c.commandId!);
      await waitUntil('commands executed', async () => (await stack.prisma.deviceCommand.count({ where: { commandId: { in: ids }, status: 'EXECUTED' } })) === ids.length, timeoutMs);
    },
    async audit(): Promise<string[]> {
      const problems = [...unexpected];
      const statuses = await stack.prisma.deviceCommand.findMany({ where: { commandId: { in: sent.map((c) => c.commandId!) } }, select: { commandId: true, status: true } });
      const status = new Map(statuses.map((c) => [c.commandId, c.status]));
      for (const c of sent) if (status.get(c.commandId!) !== 'EXECUTED') problems.push(`${c.serial}: HONK ${c.commandId} (requestId ${c.requestId}) is ${status.get(c.commandId!)}, expected EXECUTED`);
      for (const serial of serials) {
        const wanted = sent.filter((c) => c.serial === serial).map((c) => c.commandId).sort();
        const received = load.sim.robot(serial).commands.filter((c) => c.type === 'HONK').map((c) => c.commandId).sort();
        if (JSON.stringify(received) !== JSON.stringify(wanted)) problems.push(`${serial}: robot received HONKs ${JSON.stringify(received)}, the client was given ${JSON.stringify(wanted)}`);
        const rows = await stack.prisma.deviceCommand.count({ where: { serialNumber: serial, commandType: 'HONK' } });
        if (rows !== wanted.length) problems.push(`${serial}: ${rows} HONK commands stored, ${wanted.length} requested`);
      }
      return problems;
    },
  };
}

/** Events of a robot per type; with `context`, only those carrying that contextId. */
async function eventCounts(stack: ProcessStack, serial: string, types: string[], context?: string): Promise<Record<string, number>> {
  const rows = context
    ? await stack.prisma.$queryRaw<{ type: string; n: number }[]>`
        SELECT type, count(*)::int AS n FROM domain_events WHERE serial = ${serial} AND type = ANY(${types}) AND data->>'contextId' = ${context} GROUP BY type`
    : await stack.prisma.$queryRaw<{ type: string; n: number }[]>`
        SELECT type, count(*)::int AS n FROM domain_events WHERE serial = ${serial} AND type = ANY(${types}) GROUP BY type`;
  return Object.fromEntries(rows.map((r) => [r.type, r.n]));
}

export type FaultScenario = {
  /** The fault as the report names it. */
  fault: string;
  /** Injects the fault and ends it; resolves with the time it ended (a piece or server started again). */
  inject(ctx: { load: FleetLoad }): Promise<number>;
  robots?: number;
  hz?: number;
  /** Lid cycles and a rollout under way when the fault hits (the rollout needs PostgreSQL for the local Greengrass). */
  lidCycles?: number;
  rollout?: boolean;
  /** Problems seen while the fault lasted, and notes for the report. */
  during?(): { problems: string[]; notes: string[] };
  /** Checks of its own once the load has stopped and the fleet is drained and audited: problems, and notes for the report. */
  audit?(ctx: { load: FleetLoad }): Promise<{ problems: string[]; notes: string[] }>;
};

/**
 * The shape of every fault test: a simulated fleet under load (component flips, wrong PINs typed
 * all along), lid cycles and a rollout started, an API client reading and sending commands; then
 * the fault; then the time until the fleet has caught up (its recovery time); then, once the work
 * has finished and the load stopped, the audits. Reports one row of the reliability table and
 * fails with every problem found.
 */
export async function runUnderFault(stack: ProcessStack, scenario: FaultScenario): Promise<void> {
  const load = await startFaultLoad(stack, { robots: scenario.robots, hz: scenario.hz });
  try {
    const cycles = await lidCycles(stack, load, load.serials.slice(1, 1 + (scenario.lidCycles ?? 6)));
    const deployment = scenario.rollout === false ? null : await rollout(stack, load.serials.slice(10, 15));
    const client = apiClient(stack, load, load.serials.slice(20, 24));
    // The fault hits mid-work: a lid cycle open (more to come) and the rollout's canary soaking.
    await waitUntil(
      'work under way',
      async () =>
        (await stack.prisma.lidCycle.count({ where: { serialNumber: { in: cycles.serials }, status: 'INIT' } })) > 0 &&
        (!deployment || (await stack.api(`/v1/deployments/${deployment.deploymentId}`)).body?.phase === 'SOAK'),
      60_000,
    );

    const atFault = await inProgress(stack, cycles.serials, deployment?.deploymentId);
    const endedAt = await scenario.inject({ load });
    const recoveryMs = await recovered(stack, load, endedAt);

    const work = [cycles, lidRobots(stack, load, [cycles]), ...(deployment ? [deployment] : [])];
    const drained = await drainAndAudit(stack, load, work, client);
    const drainMs = drained.drainMs;
    const during = scenario.during?.() ?? { problems: [], notes: [] };
    const own = (await scenario.audit?.({ load })) ?? { problems: [], notes: [] };
    const problems = [...during.problems, ...drained.problems, ...own.problems];
    const failures = client.outages.length;
    report({
      fault: scenario.fault,
      load: `${load.description}; ${cycles.serials.length} lid cycles${deployment ? ', a rollout' : ''}; API reads and commands`,
      lost: problems.length === 0 ? 'nothing' : `${problems.length} problems`,
      recoverySeconds: recoveryMs / 1000,
      notes: [`at the fault: ${atFault}`, `${load.count} heartbeats`, `workflows drained ${(drainMs / 1000).toFixed(1)} s after the load stopped`, `API client: ${client.reads} reads, ${failures} failed (refused or 503, no other error)`, ...during.notes, ...own.notes].join('; '),
    });
    expect(problems).toEqual([]);
  } finally {
    await load.stop();
  }
}

/**
 * The load of every fault scenario: `robots` simulated robots (30) at `hz` (2), one robot's camera
 * flipping every 400 ms, a wrong PIN typed every 300 ms on the last five, robots that open and
 * close their lid after an unlock; resolves once every robot is in the projection.
 */
export async function startFaultLoad(stack: ProcessStack, opts: { robots?: number; hz?: number } = {}): Promise<FleetLoad> {
  const load = new FleetLoad(stack.mqttUrl, { robots: opts.robots ?? 30, hz: opts.hz ?? 2, flipEveryMs: 400, keypadEveryMs: 300, keypadRobots: 5, lidAfterUnlock: { openAfterMs: 1000, closeAfterMs: 3000 } });
  await load.start();
  try {
    await waitUntil('every robot in the projection', async () => (await behind(stack, new Map(load.serials.map((s) => [s, 1])))).length === 0, 60_000);
  } catch (error) {
    await load.stop();
    throw error;
  }
  return load;
}

/**
 * Once the faults are over: lets the work finish, stops the API client and the load, waits until
 * the projection and the robot workflows have caught up, and runs every audit (the fleet's, each
 * work's, the client's, pieces that crashed). A wait that never ends is a problem too. `drainMs`:
 * how long the robot workflows took to catch up after the load stopped.
 */
export async function drainAndAudit(stack: ProcessStack, load: FleetLoad, work: Work[], client: ApiClient): Promise<{ problems: string[]; drainMs: number }> {
  const problems: string[] = [];
  const waited = (p: Promise<unknown>) => p.then(() => undefined, (error: Error) => void problems.push(error.message));
  for (const w of work) await waited(w.done());
  await client.stop();
  await waited(client.done());
  await load.quiesce();
  await waited(waitUntil('projection caught up', async () => (await behind(stack, load.lastPublished())).length === 0, 60_000, () => whyBehind(stack, load)));
  // The robot workflows may still be working through what queued up: wait until the audit passes.
  const drainStarted = Date.now();
  await waitUntil('robot workflows caught up', async () => (await auditFleet(stack, load)).length === 0, 180_000).catch(() => undefined);
  const drainMs = Date.now() - drainStarted;
  await sleep(2000); // a doubled event would come now

  problems.push(...(await auditFleet(stack, load)));
  for (const w of work) problems.push(...(await w.audit()));
  problems.push(...(await client.audit()), ...stack.crashed());
  return { problems, drainMs };
}

/** Which robots the projection is behind on, and what each ingest worker says, for the failure message. */
async function whyBehind(stack: ProcessStack, load: FleetLoad): Promise<string> {
  const published = load.lastPublished();
  const late = await behind(stack, published);
  const rows = await stack.prisma.device.findMany({ where: { serialNumber: { in: late } }, select: { serialNumber: true, lastHeartbeatAt: true, lastSeenAt: true } });
  const ingests = await Promise.all(
    stack.ingestMetricsUrls().map(async ([name, url]) => {
      const text = await fetch(url, { signal: AbortSignal.timeout(2000) }).then((r) => r.text(), (e: Error) => e.message);
      const metric = (m: string) => new RegExp(`^${m} (\\S+)`, 'm').exec(text)?.[1];
      return `${name}: pending ${metric('fleet_ingest_pending_messages')}, accepted ${metric('fleet_ingest_heartbeats_accepted_total')}, written ${metric('fleet_ingest_heartbeats_written_total')}; ${stack.output(name).slice(-600)}`;
    }),
  );
  return `behind (serial, last published, stored newest, last seen): ${JSON.stringify(rows.map((r) => [r.serialNumber, published.get(r.serialNumber), r.lastHeartbeatAt?.getTime(), r.lastSeenAt?.getTime()]))}; ${ingests.join(' | ')}`;
}

/** What was under way when the fault hit, for the report. */
async function inProgress(stack: ProcessStack, cycleSerials: string[], deploymentId?: string): Promise<string> {
  const open = await stack.prisma.lidCycle.count({ where: { serialNumber: { in: cycleSerials }, status: 'INIT' } });
  const done = await stack.prisma.lidCycle.count({ where: { serialNumber: { in: cycleSerials }, status: { not: 'INIT' } } });
  const phase = deploymentId ? `, rollout in ${(await stack.api(`/v1/deployments/${deploymentId}`)).body?.phase}` : '';
  return `lid cycles ${open} open, ${done} done, ${cycleSerials.length - open - done} not yet begun${phase}`;
}
