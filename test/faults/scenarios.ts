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

const INTERESTING_EVENTS = ['LidCycle.Started', 'LidCycle.Completed', 'LidCycle.Timeout', 'LidCycle.PinValidated', 'LidCycle.PinRejected'];

export type Work = { done(timeoutMs?: number): Promise<void>; audit(): Promise<string[]> };

/** A merchant PIN on each robot, typed on its keypad one robot after another, `everyMs` apart. */
export async function lidCycles(stack: ProcessStack, load: FleetLoad, serials: string[], everyMs = 1500): Promise<Work & { serials: string[] }> {
  const pins = new Map(serials.map((s, i) => [s, String(4000 + i * 7)]));
  for (const [serial, pin] of pins) {
    const res = await stack.request('PUT', `/v1/devices/${serial}/unlock-pin`, { pin, pinType: 'MERCHANT', contextId: `ctx-${serial}`, expiresAt: new Date(Date.now() + 3_600_000).toISOString() });
    if (res.status !== 200) throw new Error(`PUT unlock-pin ${serial}: ${res.status} ${JSON.stringify(res.body)}`);
  }
  const typing = (async () => {
    for (const [serial, pin] of pins) {
      load.sim.enterPin(serial, pin);
      await sleep(everyMs);
    }
  })();
  const cyclesOf = (serial: string) => stack.prisma.lidCycle.findMany({ where: { serialNumber: serial } });
  return {
    serials,
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
        const cycles = await cyclesOf(serial);
        const shown = cycles.map((c) => `${c.status}${c.forced ? ' forced' : ''} ${c.contextId}`);
        if (JSON.stringify(shown) !== JSON.stringify([`COMPLETE ctx-${serial}`])) problems.push(`${serial}: lid cycles ${JSON.stringify(shown)}, expected one COMPLETE with ctx-${serial}`);
        const counts = await eventCounts(stack, serial, INTERESTING_EVENTS);
        const want: Record<string, number> = { 'LidCycle.Started': 1, 'LidCycle.Completed': 1, 'LidCycle.Timeout': 0, 'LidCycle.PinValidated': 1, 'LidCycle.PinRejected': 0 };
        for (const [type, n] of Object.entries(want)) if ((counts[type] ?? 0) !== n) problems.push(`${serial}: ${counts[type] ?? 0} ${type}, expected ${n}`);
        const unlocks = load.sim.robot(serial).commands.filter((c) => c.type === 'UNLOCK_LID');
        if (unlocks.length !== 1) problems.push(`${serial}: the robot received ${unlocks.length} distinct UNLOCK_LID commands, expected 1`);
        for (const u of unlocks) {
          const res = await stack.api(`/v1/devices/${serial}/commands/${u.commandId}`);
          if (res.body?.status !== 'EXECUTED') problems.push(`${serial}: UNLOCK_LID ${u.commandId} is ${res.body?.status}, expected EXECUTED`);
        }
      }
      return problems;
    },
  };
}

const account = '000000000000';
const nav = { 'com.coco.Navigation': { componentVersion: '2.0.0' } };

/** A rollout to a thing group of `serials`: the first is the canary, soaked `soakSeconds`, then the rest. */
export async function rollout(stack: ProcessStack, serials: string[], soakSeconds = 8): Promise<Work & { deploymentId: string }> {
  const name = `faults-${randomUUID().slice(0, 8)}`;
  await stack.greengrass.control({ action: 'setThingGroup', name, thingNames: serials });
  const groupArn = `arn:aws:iot:${stack.greengrass.region}:${account}:thinggroup/${name}`;
  const body = { targetArn: groupArn, components: nav, rollout: { canaryDevices: 1, soakSeconds }, requestId: name };
  const res = await stack.request('POST', '/v1/deployments', body);
  if (res.status !== 201) throw new Error(`POST /v1/deployments: ${res.status} ${JSON.stringify(res.body)}`);
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
    async done(timeoutMs = 240_000) {
      await waitUntil(
        'commands executed',
        async () => {
          for (const c of sent) if ((await stack.api(`/v1/devices/${c.serial}/commands/${c.commandId}`)).body?.status !== 'EXECUTED') return false;
          return true;
        },
        timeoutMs,
      );
    },
    async audit(): Promise<string[]> {
      const problems = [...unexpected];
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

async function eventCounts(stack: ProcessStack, serial: string, types: string[]): Promise<Record<string, number>> {
  const rows = await stack.prisma.$queryRaw<{ type: string; n: number }[]>`
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
};

/**
 * The shape of every fault test: a simulated fleet under load (component flips, wrong PINs typed
 * all along), lid cycles and a rollout started, an API client reading and sending commands; then
 * the fault; then the time until the fleet has caught up (its recovery time); then, once the work
 * has finished and the load stopped, the audits. Reports one row of the reliability table and
 * fails with every problem found.
 */
export async function runUnderFault(stack: ProcessStack, scenario: FaultScenario): Promise<void> {
  const robots = scenario.robots ?? 30;
  const load = new FleetLoad(stack.mqttUrl, { robots, hz: scenario.hz ?? 2, flipEveryMs: 400, keypadEveryMs: 300, keypadRobots: 5, lidAfterUnlock: { openAfterMs: 1000, closeAfterMs: 3000 } });
  await load.start();
  try {
    await waitUntil('every robot in the projection', async () => (await behind(stack, new Map(load.serials.map((s) => [s, 1])))).length === 0, 60_000);
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

    await Promise.all([cycles.done(), deployment?.done()]);
    await client.stop();
    await client.done();
    await load.quiesce();
    await waitUntil('projection caught up', async () => (await behind(stack, load.lastPublished())).length === 0, 60_000, async () => {
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
    });
    // The robot workflows may still be working through what queued up: wait until the audit passes.
    const drainStarted = Date.now();
    let audit: string[] = [];
    await waitUntil('robot workflows caught up', async () => (audit = await auditFleet(stack, load)).length === 0, 180_000).catch(() => undefined);
    const drainMs = Date.now() - drainStarted;
    await sleep(2000); // a doubled event would come now

    const during = scenario.during?.() ?? { problems: [], notes: [] };
    audit = await auditFleet(stack, load);
    const problems = [...during.problems, ...audit, ...(await cycles.audit()), ...(await deployment?.audit() ?? []), ...(await client.audit()), ...stack.crashed()];
    const failures = client.outages.length;
    report({
      fault: scenario.fault,
      load: `${load.description}; ${cycles.serials.length} lid cycles${deployment ? ', a rollout' : ''}; API reads and commands`,
      lost: problems.length === 0 ? 'nothing' : `${problems.length} problems`,
      recoverySeconds: recoveryMs / 1000,
      notes: [`at the fault: ${atFault}`, `${load.count} heartbeats`, `workflows drained ${(drainMs / 1000).toFixed(1)} s after the load stopped`, `API client: ${client.reads} reads, ${failures} failed (refused or 503, no other error)`, ...during.notes].join('; '),
    });
    expect(problems).toEqual([]);
  } finally {
    await load.stop();
  }
}

/** What was under way when the fault hit, for the report. */
async function inProgress(stack: ProcessStack, cycleSerials: string[], deploymentId?: string): Promise<string> {
  const open = await stack.prisma.lidCycle.count({ where: { serialNumber: { in: cycleSerials }, status: 'INIT' } });
  const done = await stack.prisma.lidCycle.count({ where: { serialNumber: { in: cycleSerials }, status: { not: 'INIT' } } });
  const phase = deploymentId ? `, rollout in ${(await stack.api(`/v1/deployments/${deploymentId}`)).body?.phase}` : '';
  return `lid cycles ${open} open, ${done} done, ${cycleSerials.length - open - done} not yet begun${phase}`;
}
