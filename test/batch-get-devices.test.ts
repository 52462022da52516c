import type { MqttClient } from 'mqtt';
import { eventually, startFleet, uniqueSerial, type TestFleet } from './support/fleet';
import { connectRobot, heartbeat, publish } from './support/robot';

/** GET /v1/devices:batchGet (seed BatchGetDevices): many robots in one read, as other services follow the fleet. */

let fleet: TestFleet;
let robot: MqttClient;

beforeAll(async () => {
  fleet = await startFleet();
  robot = await connectRobot();
});

afterAll(async () => {
  await robot?.endAsync();
  await fleet?.stop();
});

const read = (path: string) => fleet.request('GET', path, undefined, fleet.keys.read);

describe('GET /v1/devices:batchGet', () => {
  test('answers the known robots as GET /v1/devices/{serial} shows them, in the order asked, and lists the unknown ones as missing', async () => {
    const [a, b] = [uniqueSerial('BG'), uniqueSerial('BG')];
    const unknown = uniqueSerial('BG');
    await publish(robot, `robot/${a}/status`, heartbeat(a, { gps: { lat: 1, lng: 1 } }));
    await publish(robot, `robot/${b}/status`, heartbeat(b, { gps: { lat: 2, lng: 2 } }));
    await eventually(async () => expect((await fleet.api(`/v1/devices/${b}`)).status).toBe(200));
    await eventually(async () => expect((await fleet.api(`/v1/devices/${a}`)).status).toBe(200));

    const res = await read(`/v1/devices:batchGet?serials=${b},${unknown},${a},${b}`);
    expect(res.status).toBe(200);
    expect(res.body.devices.map((d: { name: string }) => d.name)).toEqual([`devices/${b}`, `devices/${a}`]);
    expect(res.body.missing).toEqual([unknown]);
    // The robot workflow may mark a robot online between two reads: compare what the heartbeat set.
    const single = (await fleet.api(`/v1/devices/${a}`)).body;
    for (const field of ['name', 'location', 'batteries', 'lidState', 'componentStatuses', 'driveuStatus', 'greengrassStatus', 'createdAt']) {
      expect([field, res.body.devices[1][field]]).toEqual([field, single[field]]);
    }
  });

  test('takes 1,000 serials, and more is a 400 naming serials', async () => {
    const known = uniqueSerial('BG');
    await publish(robot, `robot/${known}/status`, heartbeat(known));
    await eventually(async () => expect((await fleet.api(`/v1/devices/${known}`)).status).toBe(200));
    // Serials of 64 characters: the URL is about 65 kB.
    const long = (i: number) => `${known}-${String(i).padStart(63 - known.length, '0')}`;
    const thousand = [known, ...Array.from({ length: 999 }, (_, i) => long(i))];
    const ok = await read(`/v1/devices:batchGet?serials=${thousand.join(',')}`);
    expect([ok.status, ok.body.devices.length, ok.body.missing.length]).toEqual([200, 1, 999]);

    const over = await read(`/v1/devices:batchGet?serials=${[...thousand, long(1000)].join(',')}`);
    expect([over.status, over.body.error.message]).toEqual([400, 'serials: at most 1000 serials, got 1001']);
  });

  test('a missing or invalid serials is a 400 naming serials', async () => {
    for (const query of ['', '?serials=', '?serials=A,,B', '?serials=A%20B', '?serials=A&serials=B', `?serials=${'x'.repeat(65)}`]) {
      const res = await read(`/v1/devices:batchGet${query}`);
      expect([query.slice(0, 30), res.status, res.body.error.message]).toEqual([query.slice(0, 30), 400, expect.stringMatching(/^serials: /)]);
    }
  });

  test('its colon is literal, not a path parameter', async () => {
    expect((await read('/v1/devicesXbatchGet?serials=A')).status).toBe(404);
    expect((await read('/v1/devices:batchGetX?serials=A')).status).toBe(404);
  });
});
