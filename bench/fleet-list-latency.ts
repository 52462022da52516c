import { fork } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { Client as TemporalClient, Connection } from '@temporalio/client';
import { Client as PgClient, Pool } from 'pg';
import pino from 'pino';
import { deviceFilterTypes, deviceListStatements, writeHeartbeats } from '../store/devices';
import { fleetFilterTypes, fleetListStatements } from '../store/fleet';
import { createApp } from '../api/app';
import { parseOrderBy } from '../api/fleet-devices';
import { loadConfig } from '../config';
import { parseFilter } from '../domain/filter';
import type { Heartbeat } from '../domain/heartbeat';
import { applyMigrations } from '../infra/migrate';
import { startEmbeddedPostgres } from '../infra/postgres';
import { createPrisma } from '../infra/prisma';
import { freePort } from '../infra/ports';
import { percentiles } from './load-generator';
import { round } from './proc';
import { insertFillerDevices } from './run';
import { repoRoot } from './stack';

/**
 * The list routes' latency on a large fleet, for docs/performance.md, never asserted:
 * `node --import tsx bench/fleet-list-latency.ts [--devices 12000] [--robots 2000] [--requests 300] [--every-ms 100] [--json FILE]`.
 * A fresh embedded PostgreSQL with every migration and `--devices` filler devices (bench/run.ts
 * `insertFillerDevices`: batteries, components, fleet rows); `--robots` of them then send
 * heartbeats at 1 Hz through `writeHeartbeats` in 100 ms batches from a process of their own, as the
 * ingest worker writes them, while each listing is requested `--requests` times through the API app
 * (in this process); then the statements that the filter decides, alone: the page's keys and the
 * count (the fleet route runs both inside its one statement, /v1/devices side by side), run side by side,
 * alternating with the same statements computing batteryPercent as the routes did before the
 * stored column (a subquery on device_batteries per row). Then EXPLAIN ANALYZE of both, under the
 * same load.
 */

type Options = { devices: number; robots: number; requests: number; everyMs: number; json?: string };

const KEY = 'fleet-list-latency-0123456789';
const BATCH_MS = 100;

const listings = [
  { name: 'fleet online=true AND batteryPercent>20', route: 'fleet', filter: 'online=true AND batteryPercent>20' },
  { name: 'fleet batteryPercent<=20, orderBy batteryPercent', route: 'fleet', filter: 'batteryPercent<=20', orderBy: 'batteryPercent' },
  { name: 'fleet (no filter)', route: 'fleet', filter: '' },
  { name: 'devices online=true AND batteryPercent>20', route: 'devices', filter: 'online=true AND batteryPercent>20' },
] as const;

function parseArgs(argv: string[]): Options {
  const out: Options = { devices: 12_000, robots: 2000, requests: 300, everyMs: 100 };
  for (let i = 0; i < argv.length; i += 2) {
    const [flag, value] = [argv[i], argv[i + 1]];
    if (flag === '--json') out.json = value;
    else if (flag === '--devices') out.devices = Number(value);
    else if (flag === '--robots') out.robots = Number(value);
    else if (flag === '--requests') out.requests = Number(value);
    else if (flag === '--every-ms') out.everyMs = Number(value);
    else throw new Error(`unknown option ${flag}`);
  }
  return out;
}

const fillerSerial = (i: number) => `FILL${String(i).padStart(6, '0')}`;

/** The writer process: heartbeats of the first `robots` filler devices at 1 Hz, one batch every 100 ms, until told to stop. */
async function writeLoad(databaseUrl: string, robots: number): Promise<void> {
  const prisma = createPrisma(databaseUrl);
  const batchMs: number[] = [];
  let running = true;
  process.on('message', () => (running = false));
  const perBatch = Math.ceil(robots / (1000 / BATCH_MS));
  for (let round = 0; running; round++) {
    const started = Date.now();
    const first = (round * perBatch) % robots;
    await writeHeartbeats(prisma, Array.from({ length: perBatch }, (_, k) => heartbeat(fillerSerial(1 + ((first + k) % robots)), started)));
    batchMs.push(Date.now() - started);
    await sleep(Math.max(0, BATCH_MS - (Date.now() - started)));
  }
  await prisma.$disconnect();
  const w = percentiles(batchMs.map((x) => x * 10));
  process.send!({ batches: batchMs.length, heartbeatsPerBatch: perBatch, p50: w.p50 / 10, p99: w.p99 / 10, max: w.max / 10 });
}

function startWriter(databaseUrl: string, robots: number) {
  const child = fork(__filename, ['--writer', databaseUrl, String(robots)], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const figures = new Promise<unknown>((resolve, reject) => {
    child.once('message', resolve);
    child.once('exit', (code) => reject(new Error(`the heartbeat writer exited (${code}) before reporting`)));
  });
  return {
    stop: async () => {
      child.send('stop');
      return figures;
    },
    kill: () => child.kill(),
  };
}

function heartbeat(serial: string, now: number): Heartbeat {
  const n = Number(serial.slice(4));
  const charge = (start: number) => Math.max(0, Math.round(start - ((now / 100_000) % 100)) + 100) % 101;
  return {
    serial,
    timestamp: now,
    receivedAt: now,
    location: { latitude: 37.7 + (n % 100) / 1000, longitude: -122.4, heading: 90, horizontalAccuracy: 3, altitude: 10, speedMph: 3 },
    batteries: [
      { batteryIndex: 0, chargePercent: charge(n % 100), isCharging: false, voltage: 48.2, current: -5.3, temperature: 32 },
      { batteryIndex: 1, chargePercent: charge((n * 7) % 100), isCharging: false, voltage: 48.1, current: -5.1, temperature: 31 },
    ],
    components: { GPS: 'OK', CAMERAS: 'OK', SEGWAY_BASE: 'OK', LTE_ROUTERS: 'OK', EMERGENCY_BUTTON: 'OK' },
    lidOpen: false,
    network: { type: 'CELLULAR', signalStrength: -80 },
    events: [],
  };
}

async function main(opts: Options): Promise<void> {
  const dir = join(repoRoot, '.data', `fleet-list-${process.pid}`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const postgres = await startEmbeddedPostgres({ dataDir: join(dir, 'postgres'), port: await freePort() });
  const prisma = createPrisma(postgres.url);
  const db = new PgClient({ connectionString: postgres.url });
  const pool = new Pool({ connectionString: postgres.url, max: 2 });
  const temporal = new TemporalClient({ connection: Connection.lazy({ address: `127.0.0.1:${await freePort()}`, interceptors: [] }) });
  let server: Server | undefined;
  let writer: ReturnType<typeof startWriter> | undefined;
  try {
    await applyMigrations(postgres.url);
    await db.connect();
    const filled = Date.now();
    await insertFillerDevices(db, opts.devices);
    console.log(`${opts.devices} devices inserted in ${Date.now() - filled} ms`);
    const config = loadConfig({ ...process.env, API_KEYS: `${KEY}:read`, LOG_LEVEL: 'silent' });
    const app = createApp({ prisma, temporal, config, logger: pino({ level: 'silent' }) });
    server = await new Promise<Server>((resolve) => {
      const s = app.listen(0, '127.0.0.1', () => resolve(s));
    });
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const url = (l: (typeof listings)[number]) => {
      const params = new URLSearchParams({ filter: l.filter, ...('orderBy' in l ? { orderBy: l.orderBy } : {}) });
      return `${base}/v1/${l.route === 'fleet' ? 'fleet-devices' : 'devices'}?${params}`;
    };

    writer = startWriter(postgres.url, opts.robots);
    await sleep(5000); // every robot written a few times
    const loadBefore = loadavg().map((x) => round(x, 2));
    const results = [];
    for (const listing of listings) {
      const latencies: number[] = [];
      let totalSize = 0;
      for (let i = 0; i < opts.requests + 5; i++) {
        const started = performance.now();
        const res = await fetch(url(listing), { headers: { 'x-api-key': KEY } });
        const body = (await res.json()) as { totalSize: number };
        if (!res.ok) throw new Error(`${listing.name}: ${res.status} ${JSON.stringify(body)}`);
        if (i >= 5) latencies.push(performance.now() - started); // the first few warm the connection pool
        totalSize = body.totalSize;
        await sleep(opts.everyMs);
      }
      const statements = statementsOf(listing, config.FLEET_STALE_AFTER_SECONDS);
      const sqlMs: Record<Variant, number[]> = { column: [], subquery: [] };
      for (let i = 0; i < opts.requests; i++) {
        for (const variant of variants) {
          const started = performance.now();
          await Promise.all(Object.values(statements).map((sql) => pool.query(asRun(sql, listing.route, variant))));
          sqlMs[variant].push(performance.now() - started);
          await sleep(opts.everyMs / 2);
        }
      }
      const figures = { listing: listing.name, requests: latencies.length, totalSize, route: tenths(latencies), sqlColumn: tenths(sqlMs.column), sqlSubquery: tenths(sqlMs.subquery) };
      console.log(JSON.stringify(figures));
      results.push(figures);
    }
    const loadAfter = loadavg().map((x) => round(x, 2));

    const plans: Record<string, string> = {};
    for (const listing of listings) {
      for (const [part, sql] of Object.entries(statementsOf(listing, config.FLEET_STALE_AFTER_SECONDS))) {
        for (const variant of variants) {
          const { text, values } = asRun(sql, listing.route, variant);
          const rows = await db.query<{ 'QUERY PLAN': string }>(`EXPLAIN (ANALYZE, BUFFERS) ${text}`, values);
          plans[`${listing.name} | ${part} | ${variant}`] = rows.rows.map((r) => r['QUERY PLAN']).join('\n');
        }
      }
    }
    const writes = await writer.stop();
    writer = undefined;
    for (const [name, plan] of Object.entries(plans)) console.log(`\n--- ${name}\n${plan}`);
    console.log('\nheartbeat batch writes (ms):', JSON.stringify(writes));
    console.log(`load average (1, 5, 15 min) before ${loadBefore.join(' ')}, after ${loadAfter.join(' ')}`);
    const cell = (f: ReturnType<typeof tenths>) => `${f.p50} / ${f.p99} / ${f.max}`;
    console.log('\n| listing | totalSize | route p50 / p99 / max ms | page + count SQL, stored column | the same, subquery as before |\n|---|---|---|---|---|');
    for (const r of results) console.log(`| ${r.listing} | ${r.totalSize} | ${cell(r.route)} | ${cell(r.sqlColumn)} | ${cell(r.sqlSubquery)} |`);
    if (opts.json) writeFileSync(opts.json, JSON.stringify({ ...opts, loadBefore, loadAfter, results, writes, plans }, null, 2));
  } finally {
    writer?.kill();
    await new Promise((resolve) => (server ? server.close(resolve) : resolve(undefined)));
    await db.end().catch(() => undefined);
    await pool.end().catch(() => undefined);
    await prisma.$disconnect();
    await temporal.connection.close();
    await postgres.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

const variants = ['column', 'subquery'] as const;
type Variant = (typeof variants)[number];

/** A statement as the route runs it, or with batteryPercent computed as before migration 20261123060000_device_battery_percent. */
function asRun(sql: { text: string; values: unknown[] }, route: 'fleet' | 'devices', variant: Variant) {
  if (variant === 'column') return { text: sql.text, values: sql.values };
  const owner = route === 'fleet' ? 'f' : 'd';
  const subquery = `(SELECT min(b.charge_percent) FROM device_batteries b WHERE b.serial_number = ${owner}.serial_number)`;
  return { text: sql.text.replaceAll('d.battery_percent', subquery), values: sql.values };
}

function tenths(ms: number[]) {
  const p = percentiles(ms.map((x) => x * 10));
  return { p50: p.p50 / 10, p99: p.p99 / 10, max: p.max / 10 };
}

const statementsOf = (listing: (typeof listings)[number], staleAfterSeconds: number) =>
  listing.route === 'fleet'
    ? fleetListStatements(parseFilter(listing.filter, fleetFilterTypes), parseOrderBy('orderBy' in listing ? listing.orderBy : undefined), 50, staleAfterSeconds)
    : deviceListStatements(parseFilter(listing.filter, deviceFilterTypes), 50);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

if (require.main === module) {
  const argv = process.argv.slice(2);
  (argv[0] === '--writer' ? writeLoad(argv[1], Number(argv[2])) : main(parseArgs(argv))).then(
    () => process.exit(0),
    (error) => {
      console.error(error);
      process.exit(1);
    },
  );
}
