import type { MqttClient } from 'mqtt';
import { eventually, startFleet, uniqueSerial, type TestFleet } from './support/fleet';
import { connectRobot, heartbeat, publish } from './support/robot';
import { events, lidCycles } from './support/lid';

/**
 * Robots whose clocks are wrong (domain/robot-clock.ts): the robot stays online while it
 * publishes, its projection follows its newest heartbeat, and lid cycles stay ordered across a
 * jump. Each robot publishes every `EVERY_MS` for longer than the offline timeout.
 */

const OFFLINE_AFTER_SECONDS = 3;
const EVERY_MS = 500;
const DAY = 86_400_000;
const HOUR = 3_600_000;

let fleet: TestFleet;
let robot: MqttClient;

beforeAll(async () => {
  fleet = await startFleet({ OFFLINE_AFTER_SECONDS: String(OFFLINE_AFTER_SECONDS), SILENCE_SWEEP_SECONDS: '0.5', CLOCK_RESET_AFTER_SECONDS: '2' });
  robot = await connectRobot();
});

afterAll(async () => {
  await robot?.endAsync();
  await fleet?.stop();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Publishes `count` heartbeats `EVERY_MS` apart, the robot's clock off by `skew(i)`, each at a
 * latitude of its own; returns the last latitude sent.
 */
async function publishing(serial: string, count: number, skew: (i: number) => number, lid: (i: number) => boolean = () => false, from = 0): Promise<number> {
  let lat = 0;
  for (let i = 0; i < count; i++) {
    lat = 10 + (from + i) / 1000;
    await publish(robot, `robot/${serial}/status`, heartbeat(serial, { timestamp: Date.now() + skew(i), gps: { lat, lng: 20 }, lid: { is_open: lid(i) } }));
    await sleep(EVERY_MS);
  }
  return lat;
}

async function expectOnlineAndFollowing(serial: string, lastLat: number): Promise<void> {
  const device = await eventually(async () => {
    const res = await fleet.api(`/v1/devices/${serial}`);
    expect(res.body.location.latitude).toBe(lastLat);
    return res.body;
  });
  expect(device.connectivity.online).toBe(true);
  // Times shown stay on the server's side of the clock, never a day ahead nor in 1970.
  expect(Math.abs(Date.parse(device.location.updatedAt) - Date.now())).toBeLessThan(60_000);
  const connectivity = await events(fleet, serial, 'Device.ConnectivityChanged');
  expect(connectivity.map((e) => e.data.online)).toEqual([true]);
}

const seconds = (s: number) => Math.ceil((s * 1000) / EVERY_MS);

test('one heartbeat dated a day ahead, then normal ones: the robot stays online and its projection follows', async () => {
  const serial = uniqueSerial('CLK');
  await publishing(serial, 3, () => 0);
  await publish(robot, `robot/${serial}/status`, heartbeat(serial, { timestamp: Date.now() + DAY, gps: { lat: 50, lng: 20 } }));
  const last = await publishing(serial, seconds(OFFLINE_AFTER_SECONDS + 2), () => 0, () => false, 100);
  await expectOnlineAndFollowing(serial, last);
});

test.each([
  ['an hour', () => -HOUR],
  ['to 1970', () => -Date.now() + 1000],
])('a clock set back %s: the robot stays online and its projection follows once the reset window has passed', async (_, skew) => {
  const serial = uniqueSerial('CLK');
  await publishing(serial, 3, () => 0);
  const back = skew();
  const last = await publishing(serial, seconds(OFFLINE_AFTER_SECONDS + 2), () => back, () => false, 100);
  await expectOnlineAndFollowing(serial, last);
});

test('jitter of a few seconds both ways keeps robot-time order: an older heartbeat never overwrites a newer one', async () => {
  const serial = uniqueSerial('CLK');
  const now = Date.now();
  await publish(robot, `robot/${serial}/status`, heartbeat(serial, { timestamp: now + 3000, gps: { lat: 1, lng: 1 } }));
  await eventually(async () => expect((await fleet.api(`/v1/devices/${serial}`)).body.location?.latitude).toBe(1));
  await publish(robot, `robot/${serial}/status`, heartbeat(serial, { timestamp: now - 2000, gps: { lat: 2, lng: 2 } }));
  await publish(robot, `robot/${serial}/status`, heartbeat(serial, { timestamp: now + 4000, gps: { lat: 3, lng: 3 } }));
  await eventually(async () => expect((await fleet.api(`/v1/devices/${serial}`)).body.location.latitude).toBe(3));
  await publish(robot, `robot/${serial}/status`, heartbeat(serial, { timestamp: now + 3500, gps: { lat: 4, lng: 4 } }));
  const marker = uniqueSerial('CLK');
  await publish(robot, `robot/${marker}/status`, heartbeat(marker));
  await eventually(async () => expect((await fleet.api(`/v1/devices/${marker}`)).status).toBe(200));
  expect((await fleet.api(`/v1/devices/${serial}`)).body.location.latitude).toBe(3);
});

test('a lid opened before the clock was set back and closed after it makes one complete cycle of a sensible length', async () => {
  const serial = uniqueSerial('CLK');
  await publishing(serial, 2, () => 0);
  const opened = Date.now();
  await publishing(serial, 2, () => 0, () => true);
  const back = -HOUR;
  // Lid still open while the reset window passes on the set-back clock, then closed.
  await publishing(serial, seconds(3), () => back, () => true, 200);
  await publishing(serial, 3, () => back, () => false, 300);
  const closed = Date.now();
  const [cycle] = await eventually(async () => {
    const cycles = await lidCycles(fleet, serial);
    expect(cycles.map((c) => c.status)).toEqual(['COMPLETE']);
    return cycles;
  });
  const length = Date.parse(cycle.endedAt) - Date.parse(cycle.startedAt);
  expect(length).toBeGreaterThan(0);
  expect(length).toBeLessThanOrEqual(closed - opened + 5_000);
});

test('skewed heartbeats and clock epochs are counted in /metrics', async () => {
  const serial = uniqueSerial('CLK');
  await publishing(serial, 1, () => 0);
  await publishing(serial, 2, () => DAY);
  const metrics = await eventually(async () => {
    const text = await (await fetch(`${fleet.url}/metrics`)).text();
    expect(text).toMatch(/fleet_ingest_clock_epochs_total\{change="ahead"\} [1-9]/);
    return text;
  });
  expect(metrics).toMatch(/fleet_ingest_clock_corrected_total [1-9]/);
});
