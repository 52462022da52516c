import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { writeHeartbeats } from '../store/devices';
import { refreshFleetRow } from '../store/fleet';
import type { RawHeartbeat } from '../domain/heartbeat';
import { applyMigrations, listMigrations, migrationsDir } from '../infra/migrate';
import { startApiHarness, type ApiHarness } from './api/harness';
import { createTestDatabase } from './support/database';
import { ingestedHeartbeat } from './support/robot';

/**
 * `batteryPercent` in GET /v1/devices and GET /v1/fleet-devices is the stored `devices.battery_percent`,
 * kept by the heartbeat upsert (`writeHeartbeats`, the ingest worker's write): it must stay the lowest
 * of the batteries the device shows.
 */

const KEY = 'battery-percent-reader-0123456789';
const T0 = Date.UTC(2026, 0, 1, 12);

let api: ApiHarness;

beforeAll(async () => {
  api = await startApiHarness({ API_KEYS: `${KEY}:read`, LOG_LEVEL: 'silent' });
}, 60_000);

afterAll(async () => {
  await api?.stop();
});

const charges = (...percents: number[]): RawHeartbeat['batteries'] => percents.map((charge_percent, index) => ({ index, charge_percent }));

/** One heartbeat written as the ingest worker writes its batches; the robot's fleet row made as its workflow would. */
async function write(serial: string, timestamp: number, batteries: RawHeartbeat['batteries']): Promise<void> {
  await writeHeartbeats(api.prisma, [ingestedHeartbeat(serial, { timestamp, batteries })]);
  await refreshFleetRow(api.prisma, serial);
}

/** The robots a filter matches, in the fleet view's order; GET /v1/devices (serial order only) must agree. */
async function matching(filter: string, orderBy?: string): Promise<string[]> {
  const query = new URLSearchParams({ filter, pageSize: '500' });
  const fleetQuery = new URLSearchParams({ filter, pageSize: '500', ...(orderBy ? { orderBy } : {}) });
  const [devices, fleet] = await Promise.all([api.get(`/v1/devices?${query}`, KEY), api.get(`/v1/fleet-devices?${fleetQuery}`, KEY)]);
  expect([devices.status, fleet.status]).toEqual([200, 200]);
  const fleetSerials = fleet.body.fleetDevices.map((d: { name: string }) => d.name.replace('fleetDevices/', ''));
  expect(fleet.body.totalSize).toBe(fleetSerials.length);
  if (!orderBy) {
    expect(devices.body.devices.map((d: { name: string }) => d.name.replace('devices/', ''))).toEqual(fleetSerials);
    expect(devices.body.totalSize).toBe(fleetSerials.length);
  }
  return fleetSerials;
}

const shownCharges = async (serial: string) =>
  (await api.get(`/v1/devices/${serial}`, KEY)).body.batteries.map((b: { chargePercent: number }) => b.chargePercent);

test('batteryPercent is the lowest battery of the newest heartbeat; one without batteries keeps it; an older one changes nothing', async () => {
  await write('BP-1', T0, charges(80, 30));
  expect(await matching('serial="BP-1" AND batteryPercent<40')).toEqual(['BP-1']);
  expect(await matching('serial="BP-1" AND batteryPercent=30')).toEqual(['BP-1']);
  expect(await matching('serial="BP-1" AND batteryPercent>=40')).toEqual([]);

  await write('BP-1', T0 + 1000, []);
  expect(await matching('serial="BP-1" AND batteryPercent<40')).toEqual(['BP-1']);

  await write('BP-1', T0 + 2000, charges(90, 85));
  expect(await matching('serial="BP-1" AND batteryPercent<40')).toEqual([]);
  expect(await matching('serial="BP-1" AND batteryPercent=85')).toEqual(['BP-1']);

  await write('BP-1', T0 + 1500, charges(10, 10));
  expect(await matching('serial="BP-1" AND batteryPercent=85')).toEqual(['BP-1']);
  expect(await shownCharges('BP-1')).toEqual([90, 85]);
});

test('a battery a heartbeat leaves out still counts, as the device still shows it', async () => {
  await write('BP-2', T0, charges(80, 30));
  await write('BP-2', T0 + 1000, [{ index: 0, charge_percent: 90 }]);
  expect(await shownCharges('BP-2')).toEqual([90, 30]);
  expect(await matching('serial="BP-2" AND batteryPercent=30')).toEqual(['BP-2']);

  await write('BP-2', T0 + 2000, [{ index: 1, charge_percent: 60 }]);
  expect(await shownCharges('BP-2')).toEqual([90, 60]);
  expect(await matching('serial="BP-2" AND batteryPercent=60')).toEqual(['BP-2']);
});

test('ordering by batteryPercent follows the stored lowest battery; a robot never heard from sorts as -1', async () => {
  await write('BP-3', T0, charges(50, 45));
  await write('BP-4', T0, charges(20));
  await write('BP-4', T0 + 1000, charges(70));
  await api.prisma.fleetDevice.create({ data: { serialNumber: 'BP-5', status: 'OFFLINE', statusReason: 'not heard from yet' } });
  expect(await matching('serial>="BP-3" AND serial<="BP-5"', 'batteryPercent desc')).toEqual(['BP-4', 'BP-3', 'BP-5']);
  expect(await matching('serial>="BP-3" AND serial<="BP-5" AND batteryPercent>0', 'batteryPercent')).toEqual(['BP-3', 'BP-4']);
});

test('the migration fills battery_percent from the batteries a database already has', async () => {
  const mine = '20261123060000_device_battery_percent';
  const before = mkdtempSync(join(tmpdir(), 'migrations-'));
  const database = await createTestDatabase('battery_backfill', { migrate: false });
  const client = new Client({ connectionString: database.url });
  try {
    for (const m of listMigrations().filter((m) => m.name < mine)) cpSync(join(migrationsDir, m.name), join(before, m.name), { recursive: true });
    await applyMigrations(database.url, before);
    await client.connect();
    await client.query(`INSERT INTO devices (serial_number) VALUES ('OLD-1'), ('OLD-2'), ('OLD-3')`);
    await client.query(`INSERT INTO device_batteries (serial_number, battery_index, charge_percent) VALUES ('OLD-1', 0, 64), ('OLD-1', 1, 12), ('OLD-2', 0, 99)`);
    expect(await applyMigrations(database.url)).toContain(mine);
    const { rows } = await client.query('SELECT serial_number, battery_percent FROM devices ORDER BY serial_number');
    expect(rows).toEqual([
      { serial_number: 'OLD-1', battery_percent: 12 },
      { serial_number: 'OLD-2', battery_percent: 99 },
      { serial_number: 'OLD-3', battery_percent: null },
    ]);
  } finally {
    await client.end().catch(() => undefined);
    await database.drop();
    rmSync(before, { recursive: true, force: true });
  }
});
