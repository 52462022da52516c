import { randomUUID } from 'node:crypto';
import { appendFileSync } from 'node:fs';
import type { ComponentCode } from '../../domain/heartbeat';
import { RobotSimulator } from '../../simulator/robot-simulator';
import { robotStateQuery } from '../../workflows/robot';
import { workflowIds } from '../../temporal.config';
import type { ProcessStack } from '../support/processes';

/**
 * The load of the fault tests: simulated robots publishing at a steady rate, with a component that
 * flips between OK and a fault on a schedule, so that there are changes for the robot workflows to
 * turn into events while pieces fail. It remembers what it published: the last heartbeat of each
 * robot, and how many HealthDegraded and HealthRestored events the flips must produce.
 */

const FLIPPED = 'CAMERAS';
const FAULT: ComponentCode = 'NON_CRITICAL_FAULT';
// Above setInterval's 2^31-1 limit the timer fires at once; the load drives publishing itself.
const NEVER_MS = 2_000_000_000;

export type LoadOptions = {
  robots: number;
  hz: number;
  /** One robot's component flips this often (round robin). */
  flipEveryMs?: number;
  /**
   * The last `keypadRobots` robots (which have no PIN) have a wrong PIN typed this often, round
   * robin: each entry travels in one heartbeat only, so a lost heartbeat is a missing PinRejected.
   */
  keypadEveryMs?: number;
  keypadRobots?: number;
  lidAfterUnlock?: { openAfterMs: number; closeAfterMs: number };
};

export class FleetLoad {
  readonly sim: RobotSimulator;
  readonly serials: string[];
  readonly expected = new Map<string, { degraded: number; restored: number; pinEntries: number }>();
  readonly keypadSerials: string[];
  private readonly inFlight = new Set<Promise<void>>();
  private timers: NodeJS.Timeout[] = [];
  private flips = 0;
  private keys = 0;
  private published = 0;

  constructor(mqttUrl: string, private readonly opts: LoadOptions) {
    const prefix = `F${randomUUID().slice(0, 4).toUpperCase()}`;
    this.serials = Array.from({ length: opts.robots }, (_, i) => `${prefix}${String(i).padStart(3, '0')}`);
    this.sim = new RobotSimulator({ mqttUrl, serials: this.serials, intervalMs: NEVER_MS, lidAfterUnlock: opts.lidAfterUnlock, persistentSession: true });
    for (const s of this.serials) this.expected.set(s, { degraded: 0, restored: 0, pinEntries: 0 });
    this.keypadSerials = opts.keypadEveryMs ? this.serials.slice(-(opts.keypadRobots ?? 5)) : [];
  }

  get description(): string {
    return `${this.opts.robots} robots at ${this.opts.hz} Hz`;
  }

  /** Heartbeats handed to the broker so far. */
  get count(): number {
    return this.published;
  }

  async start(): Promise<void> {
    await this.sim.start();
    this.published += this.serials.length;
    this.timers.push(setInterval(() => this.tick(), 1000 / this.opts.hz));
    if (this.opts.flipEveryMs) this.timers.push(setInterval(() => this.flip(), this.opts.flipEveryMs));
    if (this.opts.keypadEveryMs) this.timers.push(setInterval(() => this.typeWrongPin(), this.opts.keypadEveryMs));
  }

  private typeWrongPin(): void {
    const serial = this.keypadSerials[this.keys++ % this.keypadSerials.length];
    this.sim.enterPin(serial, '13579');
    this.expected.get(serial)!.pinEntries += 1;
  }

  private tick(): void {
    for (const serial of this.serials) this.publish(serial);
  }

  /** Publishes one heartbeat now; QoS 1, so mqtt.js keeps it and sends it again until the broker has it. */
  publish(serial: string): void {
    const robot = this.sim.robot(serial);
    if (robot.silent) return;
    const p = this.sim.publish(robot).catch(() => undefined);
    this.published += 1;
    this.inFlight.add(p);
    void p.finally(() => this.inFlight.delete(p));
  }

  /** One robot's component flips, round robin; the next heartbeat carries it. */
  private flip(): void {
    const serial = this.serials[this.flips++ % this.serials.length];
    this.setComponent(serial, this.sim.robot(serial).components[FLIPPED] === 'OK' ? FAULT : 'OK');
  }

  setComponent(serial: string, code: ComponentCode): void {
    const before = this.sim.robot(serial).components[FLIPPED];
    if (before === code) return;
    this.sim.setComponent(serial, FLIPPED, code);
    const e = this.expected.get(serial)!;
    if (code === 'OK') e.restored += 1;
    else e.degraded += 1;
  }

  /** Stops publishing (after one last heartbeat each, carrying the latest flips) and waits until the broker has them all. */
  async quiesce(timeoutMs = 120_000): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    this.tick();
    const deadline = Date.now() + timeoutMs;
    while (this.inFlight.size > 0 && Date.now() < deadline) await Promise.race([Promise.all(this.inFlight), sleep(500)]);
    if (this.inFlight.size > 0) throw new Error(`${this.inFlight.size} heartbeats never reached the broker`);
  }

  /** The robot clock of each robot's newest heartbeat published. */
  lastPublished(): Map<string, number> {
    return new Map(this.serials.map((s) => [s, this.sim.robot(s).lastTimestamp]));
  }

  async stop(): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    await this.sim.stop();
  }
}

/** Robots whose projection has not caught up with `published` yet (robot clock of the newest heartbeat). */
export async function behind(stack: ProcessStack, published: Map<string, number>): Promise<string[]> {
  const rows = await stack.prisma.device.findMany({ where: { serialNumber: { in: [...published.keys()] } }, select: { serialNumber: true, lastHeartbeatAt: true } });
  const at = new Map(rows.map((r) => [r.serialNumber, r.lastHeartbeatAt?.getTime() ?? 0]));
  return [...published].filter(([s, ts]) => (at.get(s) ?? 0) < ts).map(([s]) => s);
}

/** Events recorded per serial and type. */
export async function eventCounts(stack: ProcessStack, serials: string[]): Promise<Map<string, Record<string, number>>> {
  const rows = await stack.prisma.$queryRaw<{ serial: string; type: string; n: number }[]>`
    SELECT serial, type, count(*)::int AS n FROM domain_events WHERE serial = ANY(${serials}) GROUP BY serial, type`;
  const out = new Map<string, Record<string, number>>(serials.map((s) => [s, {}]));
  for (const r of rows) out.get(r.serial)![r.type] = r.n;
  return out;
}

/**
 * What the fault tests assert after recovery, once the load has stopped: every robot's projection
 * holds exactly the last heartbeat published, each flip produced its event once, each robot came
 * online once (and never went offline), and the robot workflow's live state agrees with the robot.
 * Returns the problems found (empty: nothing lost, nothing doubled).
 */
export async function auditFleet(stack: ProcessStack, load: FleetLoad): Promise<string[]> {
  const problems: string[] = [];
  const published = load.lastPublished();
  const rows = await stack.prisma.device.findMany({ where: { serialNumber: { in: load.serials } }, select: { serialNumber: true, lastHeartbeatAt: true, online: true } });
  const bySerial = new Map(rows.map((r) => [r.serialNumber, r]));
  const counts = await eventCounts(stack, load.serials);
  for (const serial of load.serials) {
    const row = bySerial.get(serial);
    const last = published.get(serial)!;
    if (row?.lastHeartbeatAt?.getTime() !== last) problems.push(`${serial}: projection last_heartbeat_at ${row?.lastHeartbeatAt?.getTime()} != published ${last}`);
    if (!row?.online) problems.push(`${serial}: projection says offline`);
    const c = counts.get(serial)!;
    const want = load.expected.get(serial)!;
    const expect: Record<string, number> = { 'Device.ConnectivityChanged': 1, 'Device.HealthDegraded': want.degraded, 'Device.HealthRestored': want.restored };
    if (load.keypadSerials.includes(serial)) expect['LidCycle.PinRejected'] = want.pinEntries;
    for (const [type, n] of Object.entries(expect)) if ((c[type] ?? 0) !== n) problems.push(`${serial}: ${c[type] ?? 0} ${type}, expected ${n}`);
    const handle = stack.temporal.workflow.getHandle(workflowIds.robot(serial));
    const state = await handle.query(robotStateQuery).catch(async (error: Error) => {
      problems.push(`${serial}: the robotState query failed: ${error.cause instanceof Error ? error.cause.message : error.message}${await workflowTaskFailure(handle)}`);
      return null;
    });
    if (!state) continue;
    const robot = load.sim.robot(serial);
    if (!state.online) problems.push(`${serial}: workflow says offline`);
    const codes = Object.fromEntries(Object.entries(state.components).map(([k, v]) => [k, v.code]));
    if (JSON.stringify(sortKeys(codes)) !== JSON.stringify(sortKeys(robot.components))) problems.push(`${serial}: workflow components ${JSON.stringify(codes)} != robot ${JSON.stringify(robot.components)}`);
    if ((state.latest?.lidOpen ?? false) !== robot.lidOpen) problems.push(`${serial}: workflow lid ${state.latest?.lidOpen} != robot ${robot.lidOpen}`);
    if (state.lastHeartbeatAt === null || state.lastHeartbeatAt > last) problems.push(`${serial}: workflow lastHeartbeatAt ${state.lastHeartbeatAt} beyond published ${last}`);
  }
  return problems;
}

/** Why a workflow's task fails, from its history's last WorkflowTaskFailed event (empty when none). */
export async function workflowTaskFailure(handle: { fetchHistory(): Promise<{ events?: any[] | null }> }): Promise<string> {
  const history = await handle.fetchHistory().catch(() => null);
  const failed = (history?.events ?? []).filter((e) => e.workflowTaskFailedEventAttributes).at(-1)?.workflowTaskFailedEventAttributes;
  if (!failed) return '';
  const causes: string[] = [];
  for (let f = failed.failure; f; f = f.cause) causes.push(`${f.message}${f.stackTrace ? ` at ${f.stackTrace.split('\n').slice(0, 4).join(' | ')}` : ''}`);
  return `; its workflow task fails (${failed.cause}): ${causes.join(' <- ')}`;
}

const sortKeys = (o: Record<string, string>) => Object.fromEntries(Object.entries(o).sort(([a], [b]) => a.localeCompare(b)));

/** Polls until `check` returns true, or throws with `describe()` after the timeout. */
export async function waitUntil(what: string, check: () => Promise<boolean>, timeoutMs: number, describe: () => Promise<string> = async () => ''): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`${what}: not after ${timeoutMs} ms. ${await describe().catch((e) => String(e))}`);
    await sleep(250);
  }
}

/**
 * Waits until the fleet has caught up with everything published so far and a change made now has
 * gone all the way through (MQTT, ingest, projection, signal, robot workflow, event): the time from
 * the end of a fault until then is its recovery time.
 */
export async function recovered(stack: ProcessStack, load: FleetLoad, since: number, timeoutMs = 240_000): Promise<number> {
  const published = load.lastPublished();
  const probe = load.serials[0];
  const toFault = load.sim.robot(probe).components[FLIPPED] === 'OK';
  load.setComponent(probe, toFault ? FAULT : 'OK');
  load.publish(probe);
  const type = toFault ? 'Device.HealthDegraded' : 'Device.HealthRestored';
  const want = toFault ? load.expected.get(probe)!.degraded : load.expected.get(probe)!.restored;
  await waitUntil(
    'caught up',
    async () => (await behind(stack, published)).length === 0 && ((await eventCounts(stack, [probe])).get(probe)![type] ?? 0) >= want,
    timeoutMs,
    async () => `behind: ${(await behind(stack, published)).join(', ')}; crashed: ${stack.crashed().join('\n')}`,
  );
  return Date.now() - since;
}

export type FaultResult = { fault: string; load: string; lost: string; recoverySeconds: number; notes?: string };

/** Prints one row of the reliability table, and appends it to FAULTS_REPORT (a JSON-lines file) when set. */
export function report(result: FaultResult): void {
  const line = `| ${result.fault} | ${result.load} | ${result.lost} | ${result.recoverySeconds.toFixed(1)} s |${result.notes ? ` ${result.notes} |` : ''}`;
  process.stdout.write(`RELIABILITY ${line}\n`);
  if (process.env.FAULTS_REPORT) appendFileSync(process.env.FAULTS_REPORT, `${JSON.stringify(result)}\n`);
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
