import { fleetStatuses } from '../domain/fleet-status';
import { startApiHarness, type ApiHarness } from './api/harness';

/**
 * GET /v1/fleet-devices on a fleet of 3,000 robots written straight into an empty database: every
 * filter's totalSize and page walk is checked against the same rows filtered in JavaScript.
 */

const KEY = 'fleet-list-reader-0123456789';
const ROBOTS = 3000;

type Robot = {
  serial: string;
  online: boolean;
  lidOpen: boolean;
  network: 'CELLULAR' | 'WIFI';
  charges: number[];
  pilot: boolean;
  status: (typeof fleetStatuses)[number];
  tripType: string | null;
  stage: string | null;
  foTasks: number;
};

const serialOf = (i: number) => `FL${String(i).padStart(5, '0')}`;

function robotAt(i: number): Robot {
  const status = fleetStatuses[i % fleetStatuses.length];
  const onTrip = status === 'ON_TRIP' || status === 'DEPLOYING';
  return {
    serial: serialOf(i),
    online: status !== 'OFFLINE' && i % 11 !== 0,
    lidOpen: i % 7 === 0,
    network: i % 2 === 0 ? 'CELLULAR' : 'WIFI',
    // Every fifth robot has two batteries (batteryPercent is the lowest); every 13th none.
    charges: i % 13 === 0 ? [] : i % 5 === 0 ? [(i * 7) % 101, i % 101] : [i % 101],
    pilot: i % 17 === 0,
    status,
    tripType: onTrip ? (status === 'DEPLOYING' ? 'DEPLOYMENT' : i % 3 === 0 ? 'RETURN' : 'DELIVERY') : null,
    stage: onTrip ? ['EN_ROUTE_TO_PICKUP', 'AT_PICKUP', 'EN_ROUTE_TO_DROPOFF'][i % 3] : null,
    foTasks: status === 'NEEDS_MAINTENANCE' || status === 'UNDER_MAINTENANCE' ? 1 + (i % 3) : 0,
  };
}

const robots = Array.from({ length: ROBOTS }, (_, i) => robotAt(i + 1));
const battery = (r: Robot) => (r.charges.length === 0 ? null : Math.min(...r.charges));

let api: ApiHarness;

async function insertRobots(rows: Robot[]): Promise<void> {
  const col = <T>(f: (r: Robot) => T) => rows.map(f);
  await api.prisma.$executeRaw`
    INSERT INTO devices (serial_number, online, lid_is_open, network_type, pilot_connected, driveu_streamer_status, updated_at, battery_percent)
    SELECT s, o, l, n, p, CASE WHEN p THEN 'STREAMING' ELSE 'ONLINE' END, now(), b
    FROM unnest(${col((r) => r.serial)}::text[], ${col((r) => r.online)}::bool[], ${col((r) => r.lidOpen)}::bool[],
      ${col((r) => r.network)}::text[], ${col((r) => r.pilot)}::bool[], ${col(battery)}::int[]) AS u(s, o, l, n, p, b)`;
  const batteries = rows.flatMap((r) => r.charges.map((c, index) => ({ serial: r.serial, index, c })));
  await api.prisma.$executeRaw`
    INSERT INTO device_batteries (serial_number, battery_index, charge_percent)
    SELECT * FROM unnest(${batteries.map((b) => b.serial)}::text[], ${batteries.map((b) => b.index)}::int[], ${batteries.map((b) => b.c)}::int[])`;
  await api.prisma.$executeRaw`
    INSERT INTO fleet_devices (serial_number, status, status_reason, active_trip_id, active_trip_type, active_trip_stage, fo_task_count)
    SELECT s, st, 'seeded', CASE WHEN tt IS NULL THEN NULL ELSE 'trip-' || s END, tt, sg, fo
    FROM unnest(${col((r) => r.serial)}::text[], ${col((r) => r.status)}::text[], ${col((r) => r.tripType)}::text[],
      ${col((r) => r.stage)}::text[], ${col((r) => r.foTasks)}::int[]) AS u(s, st, tt, sg, fo)`;
}

beforeAll(async () => {
  api = await startApiHarness({ API_KEYS: `${KEY}:read`, LOG_LEVEL: 'silent' });
  await insertRobots(robots);
}, 120_000);

afterAll(async () => {
  await api?.stop();
});

const list = (params: Record<string, string | number>) =>
  api.get(`/v1/fleet-devices?${new URLSearchParams(Object.entries(params).map(([k, v]): [string, string] => [k, String(v)]))}`, KEY);

/** Every page of a listing, following nextPageToken; `between` runs after each page. */
async function walk(params: Record<string, string | number>, between?: (page: number) => Promise<void>): Promise<string[]> {
  const serials: string[] = [];
  let token = '';
  for (let page = 0; ; page++) {
    const res = await list({ ...params, ...(token ? { pageToken: token } : {}) });
    expect(res.status).toBe(200);
    serials.push(...res.body.fleetDevices.map((d: { name: string }) => d.name.replace('fleetDevices/', '')));
    token = res.body.nextPageToken;
    if (!token) return serials;
    await between?.(page);
  }
}

const cases: [string, (r: Robot) => boolean][] = [
  ['', () => true],
  ['status=ON_TRIP AND online=true', (r) => r.status === 'ON_TRIP' && r.online],
  ['batteryPercent>20', (r) => (battery(r) ?? -Infinity) > 20],
  ['batteryPercent<=20 OR online=false', (r) => (battery(r) !== null && battery(r)! <= 20) || !r.online],
  ['activeTrip.tripType=DELIVERY', (r) => r.tripType === 'DELIVERY'],
  ['activeTrip.tripType=TRIP_TYPE_RETURN', (r) => r.tripType === 'RETURN'],
  ['activeTrip.stage=AT_PICKUP AND status!=DEPLOYING', (r) => r.stage === 'AT_PICKUP' && r.status !== 'DEPLOYING'],
  ['(status=NEEDS_MAINTENANCE OR status=UNDER_MAINTENANCE) AND lidOpen=false', (r) => ['NEEDS_MAINTENANCE', 'UNDER_MAINTENANCE'].includes(r.status) && !r.lidOpen],
  ['foTasks.count>=2', (r) => r.foTasks >= 2],
  ['networkType=NETWORK_TYPE_WIFI AND pilotConnected=true', (r) => r.network === 'WIFI' && r.pilot],
  ['serial>="FL02990"', (r) => r.serial >= 'FL02990'],
];

test.each(cases)('totalSize and the rows of filter "%s" are right on 3,000 robots', async (filter, matches) => {
  const expected = robots.filter(matches).map((r) => r.serial);
  const first = await list({ filter, pageSize: 500 });
  expect(first.status).toBe(200);
  expect(first.body.totalSize).toBe(expected.length);
  expect(await walk({ filter, pageSize: 500 })).toEqual(expected);
});

test('ordering by the lowest battery, descending, pages through every match once in order', async () => {
  const expected = robots
    .filter((r) => r.online)
    .sort((a, b) => (battery(b) ?? -1) - (battery(a) ?? -1) || (a.serial < b.serial ? 1 : -1))
    .map((r) => r.serial);
  expect(await walk({ filter: 'online=true', orderBy: 'batteryPercent desc', pageSize: 137 })).toEqual(expected);
  const byStatus = robots.slice().sort((a, b) => (a.status === b.status ? (a.serial < b.serial ? -1 : 1) : a.status < b.status ? -1 : 1));
  expect(await walk({ orderBy: 'status', pageSize: 500 })).toEqual(byStatus.map((r) => r.serial));
});

test('page tokens stay correct while rows are added, removed and changed between pages', async () => {
  const extra = (i: number) => ({ ...robotAt(i), serial: `FL${String(i).padStart(5, '0')}X` });
  const before = extra(5);
  const after = extra(2500);
  const removed = serialOf(2800);
  const seen = await walk({ pageSize: 200 }, async (page) => {
    if (page !== 1) return;
    // After the second page (cursor near FL00400): one row behind the cursor, one ahead, one gone, others changed.
    await insertRobots([before, after]);
    await api.prisma.$executeRaw`DELETE FROM fleet_devices WHERE serial_number = ${removed}`;
    await api.prisma.$executeRaw`UPDATE fleet_devices SET status = 'OFFLINE' WHERE serial_number > 'FL01000' AND serial_number < 'FL01100'`;
  });
  expect(new Set(seen).size).toBe(seen.length);
  expect(seen).toContain(after.serial);
  expect(seen).not.toContain(before.serial);
  expect(seen).not.toContain(removed);
  expect(seen.filter((s) => !s.endsWith('X'))).toEqual(robots.map((r) => r.serial).filter((s) => s !== removed));
  // Back to the 3,000 robots the other tests expect.
  await api.prisma.$executeRaw`DELETE FROM fleet_devices WHERE serial_number LIKE 'FL%X'`;
  await api.prisma.$executeRaw`DELETE FROM devices WHERE serial_number LIKE 'FL%X'`;
  await api.prisma.$executeRaw`INSERT INTO fleet_devices (serial_number, status, status_reason) VALUES (${removed}, ${robotAt(2800).status}, 'seeded')`;
  const changed = robots.filter((r) => r.serial > 'FL01000' && r.serial < 'FL01100');
  await api.prisma.$executeRaw`
    UPDATE fleet_devices f SET status = u.st FROM unnest(${changed.map((r) => r.serial)}::text[], ${changed.map((r) => r.status)}::text[]) AS u(s, st)
    WHERE f.serial_number = u.s`;
});

test('a filter with no match, and a page past the last match, still carry the filter\'s totalSize', async () => {
  expect((await list({ filter: 'serial="nobody"' })).body).toEqual({ fleetDevices: [], nextPageToken: '', totalSize: 0 });
  const first = await list({ filter: `serial>="${serialOf(ROBOTS - 1)}"`, pageSize: 1 });
  expect(first.body).toMatchObject({ totalSize: 2, fleetDevices: [{ name: `fleetDevices/${serialOf(ROBOTS - 1)}` }] });
  const last = serialOf(ROBOTS);
  await api.prisma.$executeRaw`UPDATE fleet_devices SET serial_number = 'A-moved' WHERE serial_number = ${last}`;
  try {
    const next = await list({ filter: `serial>="${serialOf(ROBOTS - 1)}"`, pageSize: 1, pageToken: first.body.nextPageToken });
    expect(next.body).toEqual({ fleetDevices: [], nextPageToken: '', totalSize: 1 });
  } finally {
    await api.prisma.$executeRaw`UPDATE fleet_devices SET serial_number = ${last} WHERE serial_number = 'A-moved'`;
  }
});

test('a page is the FleetDevice of the contract, with the device joined in', async () => {
  const res = await list({ filter: `serial=${serialOf(10)}` });
  const r = robotAt(10);
  expect(res.body).toMatchObject({ totalSize: 1, nextPageToken: '' });
  expect(res.body.fleetDevices[0]).toMatchObject({
    name: `fleetDevices/${r.serial}`,
    status: r.status,
    device: {
      name: `devices/${r.serial}`,
      connectivity: { online: r.online, networkType: `NETWORK_TYPE_${r.network}` },
      batteries: r.charges.map((chargePercent) => expect.objectContaining({ chargePercent })),
    },
    replicaMetadata: { potentiallyStale: false },
  });
  const pilot = await list({ filter: `serial=${serialOf(17)}` });
  expect(pilot.body.fleetDevices[0].activePilot).toMatchObject({ sessionId: '' });
  expect(pilot.body.fleetDevices[0].device.driveuStatus).toMatchObject({ pilotConnected: true, streamerStatus: 'DRIVEU_STREAMER_STATUS_STREAMING' });
});

test('bad filters, orders, sizes and tokens are a 400 naming what is wrong', async () => {
  const error = async (params: Record<string, string | number>) => {
    const res = await list(params);
    expect(res.status).toBe(400);
    return res.body.error.message as string;
  };
  expect(await error({ filter: 'colour=red' })).toMatch(/^filter: unknown field "colour"/);
  expect(await error({ filter: 'status=ON_TRIP AND' })).toMatch(/^filter: expected a field name/);
  expect(await error({ filter: 'status=FLYING' })).toMatch(/^filter: status takes one of ON_TRIP/);
  expect(await error({ filter: 'batteryPercent>lots' })).toMatch(/^filter: batteryPercent takes a number/);
  expect(await error({ filter: "serial='x' OR 1=1; DROP TABLE fleet_devices" })).toMatch(/^filter: /);
  expect(await error({ orderBy: 'colour' })).toMatch(/^orderBy: /);
  expect(await error({ orderBy: 'serial sideways' })).toMatch(/^orderBy: /);
  expect(await error({ pageSize: 501 })).toMatch(/^pageSize: /);
  const token = (await list({ filter: 'online=true', pageSize: 10 })).body.nextPageToken;
  expect(await error({ filter: 'online=false', pageSize: 10, pageToken: token })).toMatch(/^pageToken: belongs to another filter/);
  expect(await error({ pageToken: 'not-a-token' })).toMatch(/^pageToken: /);
  expect((await api.get('/v1/fleet-devices?pageSize=1', KEY)).body.totalSize).toBe(ROBOTS);
});
