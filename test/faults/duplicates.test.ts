import mqtt, { type MqttClient } from 'mqtt';
import { robotStateQuery } from '../../workflows/robot';
import { workflowIds } from '../../temporal.config';
import { startProcessStack, type ProcessStack } from '../support/processes';
import { heartbeat } from '../support/robot';
import { FleetLoad, auditFleet, behind, sleep, waitUntil } from './fleet-load';

/**
 * Duplicated, reordered and late heartbeats and command acks, from hand-played robots, while a
 * simulated fleet runs: the projection and the robot workflow never move backwards, and every
 * event (connectivity, health, PIN entries, lid cycles, command status) is recorded once. The
 * fleet's own audit still passes afterwards.
 */

const OFFLINE_AFTER_SECONDS = 6;

let stack: ProcessStack;
let load: FleetLoad;
let robot: MqttClient;

beforeAll(async () => {
  stack = await startProcessStack({ env: { OFFLINE_AFTER_SECONDS: String(OFFLINE_AFTER_SECONDS), PIN_LOCKOUT_ATTEMPTS: '1000000' } });
  load = new FleetLoad(stack.mqttUrl, { robots: 30, hz: 2, flipEveryMs: 400, keypadEveryMs: 300, keypadRobots: 5 });
  await load.start();
  robot = await mqtt.connectAsync(stack.mqttUrl, { reconnectPeriod: 0 });
}, 300_000);

afterAll(async () => {
  await robot?.endAsync();
  await load?.stop();
  await stack?.stop();
});

let n = 0;
const serialOf = () => `DUP${Date.now().toString(36).toUpperCase()}${n++}`;
const send = (serial: string, payload: object) => robot.publishAsync(`robot/${serial}/status`, JSON.stringify(payload), { qos: 1 });
const state = (serial: string) => stack.temporal.workflow.getHandle(workflowIds.robot(serial)).query(robotStateQuery);
const device = (serial: string) => stack.prisma.device.findUniqueOrThrow({ where: { serialNumber: serial } });

async function events(serial: string, type: string): Promise<any[]> {
  return stack.prisma.domainEvent.findMany({ where: { serial, type }, orderBy: { seq: 'asc' } });
}

/** Resolves once the ingest worker has written everything sent before: a marker robot's heartbeat, sent after, is in the projection. */
async function handled(): Promise<void> {
  const marker = serialOf();
  await send(marker, heartbeat(marker));
  await waitUntil('marker written', async () => (await stack.prisma.device.count({ where: { serialNumber: marker } })) === 1, 30_000);
}

/** Waits until `read()` gives `expected` (slow under load, never early), then checks that nothing more arrives. */
async function reaches<T>(read: () => Promise<T>, expected: T, timeoutMs = 60_000): Promise<void> {
  const same = async () => JSON.stringify(await read()) === JSON.stringify(expected);
  await waitUntil('expected state', same, timeoutMs).catch(() => undefined);
  await sleep(2000); // a doubled event or a step backwards would show now
  expect(await read()).toEqual(expected);
}

test('duplicated and reordered heartbeats: the newest wins everywhere, each change, PIN entry and overtaken lid cycle is recorded once', async () => {
  const serial = serialOf();
  const t = Date.now();
  const pinAt = t + 1500;
  const h1 = heartbeat(serial, { timestamp: t, components: { GPS: 'OK' } });
  const h2 = heartbeat(serial, { timestamp: t + 2000, components: { GPS: 'CRITICAL_FAULT' }, lid: { is_open: true }, events: [{ type: 'PIN_ENTRY', pin: '2468', timestamp: pinAt }] });
  const h3 = heartbeat(serial, { timestamp: t + 3000, components: { GPS: 'CRITICAL_FAULT' } });
  const h4 = heartbeat(serial, { timestamp: t + 4000, components: { GPS: 'OK' } });
  // h2 (a fault, the lid open, a keypad entry) arrives after h4, twice; everything else twice too.
  for (const hb of [h1, h3, h4, h2, h1, h3, h2, h4]) await send(serial, hb);

  await waitUntil('h4 applied', async () => (await state(serial)).lastHeartbeatAt === t + 4000, 30_000);
  await reaches(
    async () => {
      const [st, row, rows] = await Promise.all([state(serial), device(serial), stack.prisma.lidCycle.findMany({ where: { serialNumber: serial } })]);
      return {
        workflow: { lastHeartbeatAt: st.lastHeartbeatAt, gps: st.components.GPS?.code, lidOpen: st.latest?.lidOpen },
        projection: { lastHeartbeatAt: row.lastHeartbeatAt?.getTime(), lidOpen: row.lidIsOpen },
        cycles: rows.map((c) => `${c.status} ${c.startedAt.getTime()}-${c.endedAt?.getTime()}`),
        degraded: (await events(serial, 'Device.HealthDegraded')).length,
        restored: (await events(serial, 'Device.HealthRestored')).length,
        // It goes silent after these (and offline after OFFLINE_AFTER_SECONDS): it came online once.
        cameOnline: (await events(serial, 'Device.ConnectivityChanged')).filter((e) => (e.data as { online: boolean }).online).length,
        pinRejected: (await events(serial, 'LidCycle.PinRejected')).length,
        pinEntries: (await stack.prisma.pinEntry.findMany({ where: { serialNumber: serial } })).map((e) => e.robotTimestamp?.getTime()),
      };
    },
    {
      workflow: { lastHeartbeatAt: t + 4000, gps: 'OK', lidOpen: false },
      projection: { lastHeartbeatAt: t + 4000, lidOpen: false },
      // The lid was open only in a heartbeat older than the newest: it opened at 2 s and was closed
      // by h3 (3 s), a cycle the newer heartbeats overtook, recorded once.
      cycles: [`COMPLETE ${t + 2000}-${t + 3000}`],
      // h3's fault and h4's recovery, once each; h2 came too late to change anything.
      degraded: 1,
      restored: 1,
      cameOnline: 1,
      // The keypad entry in the late heartbeat is still judged (no PIN set: rejected), once.
      pinRejected: 1,
      pinEntries: [pinAt],
    },
  );
});

test('a late duplicate does not keep a silent robot online, and a late older heartbeat does not bring it back', async () => {
  const serial = serialOf();
  const t = Date.now();
  await send(serial, heartbeat(serial, { timestamp: t }));
  await waitUntil('online', async () => (await device(serial)).online, 30_000);
  const seen = (await device(serial)).lastSeenAt?.getTime();
  await sleep(1500);
  await send(serial, heartbeat(serial, { timestamp: t }));
  await handled();
  expect((await device(serial)).lastSeenAt?.getTime()).toBe(seen);

  await waitUntil('offline', async () => !(await device(serial)).online && !(await state(serial)).online, (OFFLINE_AFTER_SECONDS + 30) * 1000);
  await send(serial, heartbeat(serial, { timestamp: t - 5000 }));
  await send(serial, heartbeat(serial, { timestamp: t }));
  const connectivity = async () => (await events(serial, 'Device.ConnectivityChanged')).map((e) => (e.data as { online: boolean }).online);
  await reaches(async () => ({ projection: (await device(serial)).online, workflow: (await state(serial)).online, connectivity: await connectivity() }), {
    projection: false,
    workflow: false,
    connectivity: [true, false],
  });

  await send(serial, heartbeat(serial, { timestamp: Date.now() }));
  await reaches(connectivity, [true, false, true]);
});

test('duplicated, reordered and late acks never move a command backwards, and an ack after its timeout changes nothing', async () => {
  const serial = serialOf();
  const commands: { commandId: string }[] = [];
  robot.on('message', (topic, payload) => {
    if (topic === `robot/${serial}/command`) commands.push(JSON.parse(payload.toString()));
  });
  await robot.subscribeAsync(`robot/${serial}/command`, { qos: 1 });
  await send(serial, heartbeat(serial));
  await waitUntil('known', async () => (await stack.api(`/v1/devices/${serial}`)).status === 200, 30_000);
  const ack = (commandId: string, status: string) => robot.publishAsync(`robot/${serial}/command/ack`, JSON.stringify({ commandId, status, message: status.toLowerCase() }), { qos: 1 });
  const view = async (commandId: string) => (await stack.api(`/v1/devices/${serial}/commands/${commandId}`)).body;

  const followed = (await stack.request('POST', `/v1/devices/${serial}/commands`, { commandType: 'FLASH_LIGHTS' })).body.commandId;
  await waitUntil('sent', async () => (await view(followed)).status === 'SENT', 30_000);
  for (const status of ['ACKNOWLEDGED', 'ACKNOWLEDGED', 'EXECUTED', 'ACKNOWLEDGED', 'EXECUTED', 'FAILED']) await ack(followed, status);
  await reaches(async () => {
    const v = await view(followed);
    return { status: v.status, message: v.message, acknowledged: v.acknowledgedAt !== null, completed: v.completedAt !== null };
  }, { status: 'EXECUTED', message: 'executed', acknowledged: true, completed: true });
  const done = await view(followed);
  await ack(followed, 'ACKNOWLEDGED');
  await reaches(() => view(followed), done);

  const ignored = (await stack.request('POST', `/v1/devices/${serial}/commands`, { commandType: 'HONK', timeoutSeconds: 2 })).body.commandId;
  await waitUntil('timed out', async () => (await view(ignored)).status === 'TIMEOUT', 30_000);
  const timedOut = await view(ignored);
  await ack(ignored, 'ACKNOWLEDGED');
  await ack(ignored, 'EXECUTED');
  await reaches(() => view(ignored), timedOut);
  // A publish retried after a slow attempt repeats the commandId, which the robot ignores: distinct ids count.
  expect([...new Set(commands.map((c) => c.commandId))].sort()).toEqual([followed, ignored].sort());
});

test('the simulated fleet running meanwhile lost and doubled nothing', async () => {
  await load.quiesce();
  await waitUntil('projection caught up', async () => (await behind(stack, load.lastPublished())).length === 0, 60_000);
  let problems: string[] = [];
  await waitUntil('fleet audit', async () => (problems = await auditFleet(stack, load)).length === 0, 120_000).catch(() => undefined);
  expect(problems).toEqual([]);
  expect(stack.crashed()).toEqual([]);
});
