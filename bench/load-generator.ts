import mqtt, { type MqttClient } from 'mqtt';
import type { ComponentCode, RawHeartbeat } from '../domain/heartbeat';

/**
 * The benchmark's robots, in a process of their own (started by bench/run.ts with fork): each
 * robot has its own MQTT connection, opened gradually, and publishes contract heartbeats at
 * `rate` Hz for `durationSeconds`, with the state changes a real fleet shows: lids opening at
 * deliveries with a PIN entry, components faulting and recovering, batteries draining and
 * charging, and a few robots going silent. It reports progress and, at the end, what it published.
 */

export type LoadOptions = {
  mqttUrl: string;
  rate: number;
  prefix: string;
  /**
   * Robot counts to climb through; after each is reached (connecting `connectPerSecond`), the load
   * holds for `holdSeconds`. One stage is a plain run of `holdSeconds`.
   */
  stages: number[];
  holdSeconds: number;
  /** After each climb, before the hold: the new robots' workflow starts settle, unmeasured. */
  settleSeconds: number;
  /** Robots whose every heartbeat timestamp is reported, for freshness. */
  sampleSize: number;
  /** Share of robots that go silent during a one-stage run, for offline detection. */
  silentShare: number;
  /** Silent robots stop early enough for their offline event to land before the run ends. */
  offlineAfterSeconds: number;
  connectPerSecond: number;
  seed?: number;
};

export type LoadProgress = {
  type: 'progress';
  phase: 'connecting' | 'holding' | 'settling';
  stage: number;
  connected: number;
  published: number;
  acked: number;
  errors: number;
  behindMs: number;
};

/** Sent as a stage's hold starts and as it ends, with the sampled robots' heartbeats of the hold. */
export type StageMark = {
  type: 'stage';
  stage: number;
  robots: number;
  at: number;
  edge: 'start' | 'end';
  published: number;
  acked: number;
  /** Robots of this stage whose CONNECT the broker never answered. */
  notConnected: number;
  behindMs: { p50: number; p99: number; max: number };
  samples: Record<string, number[]>;
};

export type LoadResult = {
  type: 'result';
  published: number;
  acked: number;
  errors: number;
  lastTimestamp: Record<string, number>;
  silent: Record<string, number>;
  stateChanges: { lid: number; faults: number; pins: number; chargeSteps: number };
};

export type LoadMessage = LoadProgress | StageMark | LoadResult;

type Robot = {
  serial: string;
  client: MqttClient;
  lat: number;
  lng: number;
  heading: number;
  charge: number;
  charging: boolean;
  lidOpenFor: number;
  faults: Record<string, number>;
  components: Record<string, ComponentCode>;
  lastTs: number;
  nextDue: number;
  /** Server time after which the robot stays silent. */
  silentFrom: number | null;
  silentPick: number | null;
  sample: number[] | null;
};

const COMPONENTS = ['GPS', 'CAMERAS', 'SEGWAY_BASE', 'LTE_ROUTERS', 'EMERGENCY_BUTTON'];
const FAULTS: ComponentCode[] = ['TIMEOUT', 'NON_CRITICAL_FAULT', 'CRITICAL_FAULT'];
// Per heartbeat, at 1 Hz: a delivery (PIN, lid open ~40 s) every 10 min, a component fault every 30 min.
const P_DELIVERY = 1 / 600;
const P_FAULT = 1 / 1800;

export const benchSerial = (prefix: string, i: number) => `${prefix}${String(i + 1).padStart(6, '0')}`;

export async function generateLoad(opts: LoadOptions, send: (m: LoadMessage) => void, stopRequested: () => boolean = () => false): Promise<LoadResult> {
  const random = mulberry32(opts.seed ?? 42);
  const periodMs = 1000 / opts.rate;
  const total = Math.max(...opts.stages);
  const sampleEvery = Math.max(1, Math.floor(total / Math.max(1, opts.sampleSize)));
  const silentEvery = opts.silentShare > 0 && opts.stages.length === 1 ? Math.max(2, Math.round(1 / opts.silentShare)) : 0;
  // In a one-stage run, silent robots stop between 20% of the hold and `offlineAfter + 10 s` before its end.
  const silentWindow = opts.holdSeconds * 0.8 - opts.offlineAfterSeconds - 10;
  const counts = { published: 0, acked: 0, errors: 0, connected: 0 };
  const changes = { lid: 0, faults: 0, pins: 0, chargeSteps: 0 };
  let behind: number[] = [];
  let phase: LoadProgress['phase'] = 'connecting';
  let stage = 0;
  let maxBehind = 0;
  let notConnected: number;
  const progress = setInterval(() => send({ type: 'progress', phase, stage, ...counts, behindMs: Math.round(maxBehind) }), 1000);

  let sampled = 0;
  const robots: Robot[] = Array.from({ length: total }, (_, i) => {
    const isSample = i % sampleEvery === 0 && sampled < opts.sampleSize;
    if (isSample) sampled += 1;
    const isSilent = !isSample && silentEvery > 0 && silentWindow > 0 && i % silentEvery === Math.floor(silentEvery / 2);
    return {
      serial: benchSerial(opts.prefix, i),
      client: null as unknown as MqttClient,
      lat: 37.7749 + (i % 100) * 0.001,
      lng: -122.4194 + Math.floor(i / 100) * 0.001,
      heading: (i * 37) % 360,
      charge: 20 + random() * 80,
      charging: false,
      lidOpenFor: 0,
      faults: {},
      components: Object.fromEntries(COMPONENTS.map((c) => [c, 'OK' as ComponentCode])),
      lastTs: 0,
      nextDue: Infinity,
      silentFrom: null,
      silentPick: isSilent ? random() : null,
      sample: isSample ? [] : null,
    };
  });
  const active: Robot[] = [];

  // One loop publishes for every robot that is due; robots join it as they connect.
  let running = true;
  const loop = (async () => {
    while (running) {
      const now = Date.now();
      for (const robot of active) {
        if (robot.nextDue > now) continue;
        const lateness = now - robot.nextDue;
        robot.nextDue += periodMs;
        if (robot.nextDue < now) robot.nextDue = now + periodMs * random(); // far behind: do not burst
        if (robot.silentFrom !== null && now >= robot.silentFrom) continue;
        if (counts.published % 20 === 0) behind.push(lateness);
        maxBehind = Math.max(maxBehind, lateness);
        publishHeartbeat(robot, now, random, changes, counts);
      }
      await sleep(5);
    }
  })();

  const takeSamples = (from: number, to: number) =>
    Object.fromEntries(active.filter((r) => r.sample).map((r) => [r.serial, r.sample!.filter((t) => t >= from && t <= to)]));

  for (const target of opts.stages) {
    if (stopRequested()) break;
    phase = 'connecting';
    // Robots come on shift gradually, as a fleet does, not as one storm: each connects and sends
    // its first heartbeat at once (which starts its workflow), then one every period.
    // Paced by the clock, not by the broker's answers: each 20 ms tick opens its share.
    let connecting = 0;
    let owed = 0;
    // A broker that stops answering CONNECTs (overloaded) ends the climb instead of hanging it.
    let lastConnectedAt = Date.now();
    let connectedBefore = counts.connected;
    const stalled = () => {
      if (counts.connected !== connectedBefore) [connectedBefore, lastConnectedAt] = [counts.connected, Date.now()];
      return Date.now() - lastConnectedAt > 30_000;
    };
    while (active.length < target && !stalled()) {
      owed += opts.connectPerSecond / 50;
      for (; owed >= 1 && active.length < target && connecting < 500; owed--) {
        const r = robots[active.length];
        active.push(r);
        connecting += 1;
        void connectRobot(opts.mqttUrl, r).then(() => {
          connecting -= 1;
          counts.connected += 1;
          publishHeartbeat(r, Date.now(), random, changes, counts);
          r.nextDue = Date.now() + periodMs;
        });
      }
      await sleep(20);
    }
    while (connecting > 0 && !stalled()) await sleep(20);
    notConnected = active.length - counts.connected + (target - active.length);
    await sleep(opts.settleSeconds * 1000);
    phase = 'holding';
    const holdStart = Date.now();
    for (const r of robots) if (r.silentPick !== null) r.silentFrom = holdStart + (opts.holdSeconds * 0.2 + r.silentPick * silentWindow) * 1000;
    behind = [];
    send({ type: 'stage', stage, robots: target, at: holdStart, edge: 'start', ...counts, notConnected, behindMs: percentiles([]), samples: {} });
    await sleep(opts.holdSeconds * 1000);
    const holdEnd = Date.now();
    send({ type: 'stage', stage, robots: target, at: holdEnd, edge: 'end', ...counts, notConnected, behindMs: percentiles(behind), samples: takeSamples(holdStart, holdEnd) });
    stage += 1;
    if (notConnected > 0) break;
    // Give the orchestrator a moment to judge the stage before climbing on.
    if (stage < opts.stages.length) await sleep(6000);
  }
  running = false;
  await loop;

  phase = 'settling';
  const settleBy = Date.now() + 15_000;
  while (counts.acked + counts.errors < counts.published && Date.now() < settleBy) await sleep(100);
  clearInterval(progress);
  const result: LoadResult = {
    type: 'result',
    published: counts.published,
    acked: counts.acked,
    errors: counts.published - counts.acked,
    lastTimestamp: Object.fromEntries(active.filter((r) => r.lastTs > 0).map((r) => [r.serial, r.lastTs])),
    silent: Object.fromEntries(active.filter((r) => r.silentFrom !== null && r.lastTs > 0).map((r) => [r.serial, r.lastTs])),
    stateChanges: changes,
  };
  await Promise.all(active.map((r) => r.client.endAsync(true).catch(() => undefined)));
  return result;
}

function connectRobot(url: string, robot: Robot): Promise<void> {
  return new Promise((resolve) => {
    robot.client = mqtt.connect(url, { clientId: robot.serial, clean: true, reconnectPeriod: 1000, keepalive: 120, connectTimeout: 30_000 });
    robot.client.once('connect', () => resolve());
    robot.client.on('error', () => undefined);
  });
}

function publishHeartbeat(
  robot: Robot,
  now: number,
  random: () => number,
  changes: LoadResult['stateChanges'],
  counts: { published: number; acked: number; errors: number },
): void {
  const events: NonNullable<RawHeartbeat['events']> = [];
  const timestamp = Math.max(now, robot.lastTs + 1);
  if (robot.lidOpenFor > 0) {
    robot.lidOpenFor -= 1;
    if (robot.lidOpenFor === 0) changes.lid += 1;
  } else if (random() < P_DELIVERY) {
    robot.lidOpenFor = 20 + Math.floor(random() * 40);
    events.push({ type: 'PIN_ENTRY', pin: String(1000 + Math.floor(random() * 9000)), timestamp });
    changes.lid += 1;
    changes.pins += 1;
  }
  for (const name of COMPONENTS) {
    if (robot.faults[name] !== undefined && --robot.faults[name] <= 0) {
      delete robot.faults[name];
      robot.components[name] = 'OK';
      changes.faults += 1;
    }
  }
  if (random() < P_FAULT) {
    const name = COMPONENTS[Math.floor(random() * COMPONENTS.length)];
    if (robot.faults[name] === undefined) {
      robot.faults[name] = 10 + Math.floor(random() * 50);
      robot.components[name] = FAULTS[Math.floor(random() * FAULTS.length)];
      changes.faults += 1;
    }
  }
  const percentBefore = Math.round(robot.charge);
  if (robot.charging) {
    robot.charge = Math.min(100, robot.charge + 0.05);
    if (robot.charge >= 95) robot.charging = false;
  } else {
    robot.charge = Math.max(0, robot.charge - 0.01);
    if (robot.charge < 15) robot.charging = true;
  }
  if (Math.round(robot.charge) !== percentBefore) changes.chargeSteps += 1;
  robot.heading = (robot.heading + 3) % 360;
  robot.lat += Math.cos((robot.heading * Math.PI) / 180) * 0.00002;
  robot.lng += Math.sin((robot.heading * Math.PI) / 180) * 0.00002;

  const heartbeat: RawHeartbeat = {
    serial: robot.serial,
    timestamp,
    gps: { lat: robot.lat, lng: robot.lng, heading: robot.heading, horizontal_accuracy: 3.5, altitude: 10, speed_mph: 3.1 },
    batteries: [{ index: 0, charge_percent: Math.round(robot.charge), is_charging: robot.charging, voltage: 48.2, current: -5.3, temperature: 32.5 }],
    components: { ...robot.components },
    lid: { is_open: robot.lidOpenFor > 0 },
    network: { type: 'CELLULAR', signal_strength: -85 },
    ...(events.length ? { events } : {}),
  };
  robot.lastTs = timestamp;
  robot.sample?.push(timestamp);
  counts.published += 1;
  robot.client.publish(`robot/${robot.serial}/status`, JSON.stringify(heartbeat), { qos: 1 }, (error) => {
    if (error) counts.errors += 1;
    else counts.acked += 1;
  });
}

export function percentiles(values: number[]): { p50: number; p99: number; max: number } {
  if (values.length === 0) return { p50: 0, p99: 0, max: 0 };
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];
  return { p50: Math.round(at(0.5)), p99: Math.round(at(0.99)), max: Math.round(sorted[sorted.length - 1]) };
}

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// Run by bench/run.ts with fork(): options arrive as the first message, then maybe 'stop';
// progress, stage marks and the result go back.
if (require.main === module && process.send) {
  let stop = false;
  process.once('message', (opts: LoadOptions) => {
    process.on('message', (m) => void (m === 'stop' && (stop = true)));
    generateLoad(opts, (p) => void (process.connected && process.send!(p)), () => stop).then(
      (result) => process.send!(result, () => process.exit(0)),
      (error) => {
        console.error(error);
        process.exit(1);
      },
    );
  });
}
