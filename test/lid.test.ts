import type { MqttClient } from 'mqtt';
import { workflowIds } from '../temporal.config';
import { RobotSimulator } from '../simulator/robot-simulator';
import { eventually, required, startFleet, uniqueSerial, type TestFleet } from './support/fleet';
import { command, events, historyText, inMinutes, lidCycles, settle, simulatedRobot } from './support/lid';
import { connectRobot, heartbeat, publish } from './support/robot';

/** The loading flow end to end: PIN set, keypad entries, UNLOCK_LID, lid open and closed, the cycle. */

let fleet: TestFleet;
let mqtt: MqttClient;

beforeAll(async () => {
  fleet = await startFleet({
    LID_OPEN_TIMEOUT_SECONDS: '60',
    PIN_LOCKOUT_ATTEMPTS: '3',
    PIN_LOCKOUT_WINDOW_SECONDS: '60',
    PIN_LOCKOUT_SECONDS: '5',
    COMMAND_TIMEOUT_SECONDS: '20',
  });
  mqtt = await connectRobot();
});

afterAll(async () => {
  await mqtt?.endAsync();
  await fleet?.stop();
});

const setPin = (serial: string, body: object) => fleet.request('PUT', `/v1/devices/${serial}/unlock-pin`, body);

test('a wrong PIN then the right one unlocks the robot; opening and closing the lid completes one cycle with the PIN context', async () => {
  const r = await simulatedRobot(fleet);
  try {
    const pin = '9081726354';
    const set = await setPin(r.serial, { pin, pinType: 'MERCHANT', contextId: 'delivery-42', expiresAt: inMinutes(10) });
    expect(set).toMatchObject({ status: 200, body: { success: true, pinType: 'MERCHANT', contextId: 'delivery-42', flow: 'deviceless', setPinCommandId: null } });
    const status = await fleet.api(`/v1/devices/${r.serial}/unlock-pin`);
    expect(status.body).toMatchObject({ activePin: { pinType: 'MERCHANT', contextId: 'delivery-42', expired: false }, lockout: { locked: false } });

    r.sim.enterPin(r.serial, '1111');
    await r.publish();
    await eventually(async () => expect(await events(fleet, r.serial, 'LidCycle.PinRejected')).toHaveLength(1));
    r.sim.enterPin(r.serial, pin);
    await r.publish();
    const [validated] = await eventually(async () => {
      const list = await events(fleet, r.serial, 'LidCycle.PinValidated');
      expect(list).toHaveLength(1);
      return list;
    });
    expect(validated.data).toMatchObject({ pinType: 'MERCHANT', contextId: 'delivery-42', source: 'KEYPAD' });
    const unlockId = validated.data.unlockCommandId;
    await eventually(async () => expect(await command(fleet, r.serial, unlockId)).toMatchObject({ commandType: 'UNLOCK_LID', status: 'EXECUTED', source: 'PIN_ENTRY' }));
    expect(r.robot().commands.filter((c) => c.type === 'UNLOCK_LID').map((c) => c.commandId)).toEqual([unlockId]);
    expect(r.robot().unlocked).toBe(true);

    await r.sim.moveLid(r.serial, true);
    const [opened] = await eventually(async () => {
      const cycles = await lidCycles(fleet, r.serial);
      expect(cycles).toHaveLength(1);
      return cycles;
    });
    expect(opened).toMatchObject({ status: 'INIT', contextId: 'delivery-42', pinType: 'MERCHANT', forced: false, unlockCommandId: unlockId, endedAt: null });
    expect(opened.pinEntries.map((e: any) => [e.outcome, e.success])).toEqual([['WRONG', false], ['VALID', true]]);

    await r.sim.moveLid(r.serial, false);
    const done = await eventually(async () => {
      const res = await fleet.api(`/v1/lid-cycles/${opened.cycleId}`);
      expect(res.body.status).toBe('COMPLETE');
      return res.body;
    });
    expect(done).toMatchObject({ cycleId: opened.cycleId, serial: r.serial, contextId: 'delivery-42', endedAt: expect.any(String) });
    expect(done.durationSeconds).toBeGreaterThan(0);

    await settle(1000);
    const started = await events(fleet, r.serial, 'LidCycle.Started');
    const completed = await events(fleet, r.serial, 'LidCycle.Completed');
    expect(started.map((e) => e.data)).toEqual([expect.objectContaining({ cycleId: opened.cycleId, contextId: 'delivery-42', forced: false })]);
    expect(completed.map((e) => e.data)).toEqual([expect.objectContaining({ cycleId: opened.cycleId, contextId: 'delivery-42', durationSeconds: done.durationSeconds })]);
    expect(await events(fleet, r.serial, 'LidCycle.Timeout')).toEqual([]);
    expect(await events(fleet, r.serial, 'LidCycle.PinValidated')).toHaveLength(1);
    expect(await events(fleet, r.serial, 'LidCycle.PinRejected')).toHaveLength(1);

    // The plain PIN is nowhere: not in workflow history, the database, events or answers.
    expect(await historyText(fleet, workflowIds.robot(r.serial))).not.toContain(pin);
    expect(await historyText(fleet, workflowIds.lidCycle(r.serial, opened.cycleId))).not.toContain(pin);
    const rows = await fleet.prisma.pinEntry.findMany({ where: { serialNumber: r.serial } });
    expect(JSON.stringify(rows)).not.toContain(pin);
    expect(rows.every((e) => /^[0-9a-f]{64}$/.test(e.enteredPinHash))).toBe(true);
    expect(JSON.stringify((await fleet.api(`/v1/events?serial=${r.serial}`)).body)).not.toContain(pin);
    expect(JSON.stringify(status.body)).not.toContain(pin);
  } finally {
    await r.stop();
  }
});

test('an opening with no unlock before it is a forced cycle without context', async () => {
  const r = await simulatedRobot(fleet);
  try {
    await r.sim.moveLid(r.serial, true);
    const [cycle] = await eventually(async () => {
      const cycles = await lidCycles(fleet, r.serial);
      expect(cycles).toHaveLength(1);
      return cycles;
    });
    expect(cycle).toMatchObject({ status: 'INIT', forced: true, contextId: null, unlockCommandId: null, pinEntries: [] });
    await r.sim.moveLid(r.serial, false);
    await eventually(async () => expect((await lidCycles(fleet, r.serial))[0].status).toBe('COMPLETE'));
    const [started] = await events(fleet, r.serial, 'LidCycle.Started');
    expect(started.data).toMatchObject({ forced: true, contextId: null });
  } finally {
    await r.stop();
  }
});

test('an expired PIN and a cleared PIN are refused, and nothing is unlocked', async () => {
  const r = await simulatedRobot(fleet);
  try {
    const soon = new Date(Date.now() + 1500).toISOString();
    expect((await setPin(r.serial, { pin: '2468', pinType: 'CUSTOMER', contextId: 'delivery-7', expiresAt: soon })).status).toBe(200);
    await eventually(async () => expect((await fleet.api(`/v1/devices/${r.serial}/unlock-pin`)).body.activePin.expired).toBe(true), 60_000, 250);
    r.sim.enterPin(r.serial, '2468');
    await r.publish();
    const [expired] = await eventually(async () => {
      const list = await events(fleet, r.serial, 'LidCycle.PinRejected');
      expect(list).toHaveLength(1);
      return list;
    });
    expect(expired.data.reason).toBe('PIN_EXPIRED');
    expect((await fleet.request('POST', `/v1/devices/${r.serial}/unlock-pin/validate`, { pin: '2468' })).body).toEqual({ valid: false });

    expect((await setPin(r.serial, { pin: '1357', pinType: 'OPERATOR', contextId: 'task-3', expiresAt: inMinutes(5) })).status).toBe(200);
    expect((await fleet.request('POST', `/v1/devices/${r.serial}/unlock-pin/validate`, { pin: '1357' })).body).toEqual({ valid: true, pinType: 'OPERATOR', contextId: 'task-3' });
    expect(await fleet.request('DELETE', `/v1/devices/${r.serial}/unlock-pin`)).toMatchObject({ status: 200, body: { success: true, cleared: true } });
    expect((await fleet.request('DELETE', `/v1/devices/${r.serial}/unlock-pin`)).body).toMatchObject({ cleared: false });
    expect((await fleet.api(`/v1/devices/${r.serial}/unlock-pin`)).body.activePin).toBeNull();
    r.sim.enterPin(r.serial, '1357');
    await r.publish();
    await eventually(async () => {
      const list = await events(fleet, r.serial, 'LidCycle.PinRejected');
      expect(list.map((e) => [e.data.reason, e.data.source])).toEqual([
        ['PIN_EXPIRED', 'KEYPAD'],
        ['PIN_EXPIRED', 'API'],
        ['NO_ACTIVE_PIN', 'KEYPAD'],
      ]);
    });
    expect((await fleet.request('POST', `/v1/devices/${r.serial}/unlock-pin/validate`, { pin: '1357' })).body).toEqual({ valid: false });
    await settle();
    expect(await events(fleet, r.serial, 'LidCycle.PinValidated')).toHaveLength(1);
    expect((await events(fleet, r.serial, 'LidCycle.PinValidated'))[0].data.source).toBe('API');
    expect(r.robot().commands).toEqual([]);
    expect(r.robot().unlocked).toBe(false);
  } finally {
    await r.stop();
  }
});

test('repeated wrong PINs lock PIN entry on the robot, visibly, and the lock releases', async () => {
  const r = await simulatedRobot(fleet);
  try {
    expect((await setPin(r.serial, { pin: '4455', pinType: 'MERCHANT', contextId: 'delivery-9', expiresAt: inMinutes(10) })).status).toBe(200);
    // Wrong entries count wherever they are made: two on the keypad, one through the API.
    r.sim.enterPin(r.serial, '0000');
    r.sim.enterPin(r.serial, '0001');
    await r.publish();
    await eventually(async () => expect(await events(fleet, r.serial, 'LidCycle.PinRejected')).toHaveLength(2));
    expect((await fleet.request('POST', `/v1/devices/${r.serial}/unlock-pin/validate`, { pin: '0002' })).body).toEqual({ valid: false });

    const [locked] = await events(fleet, r.serial, 'LidCycle.PinEntryLocked');
    expect(locked.data).toMatchObject({ failedAttempts: 3, lockedUntil: expect.any(String) });
    const status = await fleet.api(`/v1/devices/${r.serial}/unlock-pin`);
    expect(status.body.lockout).toMatchObject({ locked: true, lockedUntil: locked.data.lockedUntil, attemptsLeft: 0 });

    const refused = await fleet.request('POST', `/v1/devices/${r.serial}/unlock-pin/validate`, { pin: '4455' });
    expect(refused).toMatchObject({ status: 429, body: { error: { code: 'RESOURCE_EXHAUSTED', details: { lockedUntil: locked.data.lockedUntil } } } });
    r.sim.enterPin(r.serial, '4455');
    await r.publish();
    await eventually(async () => {
      const reasons = (await events(fleet, r.serial, 'LidCycle.PinRejected')).map((e) => e.data.reason);
      expect(reasons).toEqual(['WRONG_PIN', 'WRONG_PIN', 'WRONG_PIN', 'LOCKED_OUT', 'LOCKED_OUT']);
    });
    expect(r.robot().commands).toEqual([]);

    await eventually(async () => expect((await fleet.api(`/v1/devices/${r.serial}/unlock-pin`)).body.lockout.locked).toBe(false), 60_000, 250);
    r.sim.enterPin(r.serial, '4455');
    await r.publish();
    await eventually(async () => expect(await events(fleet, r.serial, 'LidCycle.PinValidated')).toHaveLength(1));
    await eventually(() => expect(r.robot().commands.map((c) => c.type)).toEqual(['UNLOCK_LID']));
    expect(await events(fleet, r.serial, 'LidCycle.PinEntryLocked')).toHaveLength(1);
  } finally {
    await r.stop();
  }
});

test('a worker stopped mid-cycle resumes it: the close while it was down completes the cycle once', async () => {
  const r = await simulatedRobot(fleet);
  try {
    expect((await setPin(r.serial, { pin: '7788', pinType: 'CUSTOMER', contextId: 'delivery-5', expiresAt: inMinutes(10) })).status).toBe(200);
    r.sim.enterPin(r.serial, '7788');
    await r.publish();
    await eventually(() => expect(r.robot().unlocked).toBe(true));
    await r.sim.moveLid(r.serial, true);
    const [cycle] = await eventually(async () => {
      const list = await events(fleet, r.serial, 'LidCycle.Started');
      expect(list).toHaveLength(1);
      return list;
    });

    await fleet.stopWorker();
    await r.sim.moveLid(r.serial, false);
    await settle(1000);
    expect((await fleet.api(`/v1/lid-cycles/${cycle.data.cycleId}`)).body.status).toBe('INIT');
    await fleet.startWorker();

    const done = await eventually(async () => {
      const res = await fleet.api(`/v1/lid-cycles/${cycle.data.cycleId}`);
      expect(res.body.status).toBe('COMPLETE');
      return res.body;
    });
    expect(done).toMatchObject({ contextId: 'delivery-5', pinType: 'CUSTOMER', forced: false });
    await settle(1000);
    expect(await events(fleet, r.serial, 'LidCycle.Started')).toHaveLength(1);
    expect(await events(fleet, r.serial, 'LidCycle.Completed')).toHaveLength(1);
    expect(await lidCycles(fleet, r.serial)).toHaveLength(1);
  } finally {
    await r.stop();
  }
});

test('a lid opened and closed while newer heartbeats overtook it (a broker resending a backlog) is one cycle at the robot times, counted once', async () => {
  const serial = uniqueSerial('L');
  const topic = `robot/${serial}/status`;
  const t = Date.now() - 60_000;
  const at = (seconds: number, isOpen: boolean) => heartbeat(serial, { timestamp: t + seconds * 1000, lid: { is_open: isOpen } });
  await publish(mqtt, topic, at(0, false));
  await eventually(async () => expect((await fleet.api(`/v1/devices/${serial}`)).status).toBe(200));
  // Live heartbeats at 10 and 11 s came before the backlog from 2 to 5 s, in which the lid opened and closed.
  for (const hb of [at(10, false), at(11, false), at(2, true), at(3, true), at(5, false), at(4, true)]) await publish(mqtt, topic, hb);

  const [cycle] = await eventually(async () => {
    const cycles = await lidCycles(fleet, serial);
    expect(cycles).toHaveLength(1);
    expect(cycles[0].status).toBe('COMPLETE');
    return cycles;
  });
  expect(cycle).toMatchObject({ startedAt: new Date(t + 2000).toISOString(), endedAt: new Date(t + 5000).toISOString(), forced: true });
  // The backlog resent once more: nothing new.
  for (const hb of [at(2, true), at(5, false)]) await publish(mqtt, topic, hb);
  await settle(1500);
  expect(await lidCycles(fleet, serial)).toHaveLength(1);
  expect(await events(fleet, serial, 'LidCycle.Started')).toHaveLength(1);
});

test('a late lid opening the robot workflow sees after a newer closed heartbeat is a cycle closed by that heartbeat', async () => {
  const serial = uniqueSerial('L');
  const topic = `robot/${serial}/status`;
  const t = Date.now() - 60_000;
  await publish(mqtt, topic, heartbeat(serial, { timestamp: t, lid: { is_open: false } }));
  // A component fault makes the ingest forward this one: the workflow applies it before the late ones.
  const faulty = { GPS: 'OK', CAMERAS: 'TIMEOUT', LTE_ROUTERS: 'OK' } as const;
  await publish(mqtt, topic, heartbeat(serial, { timestamp: t + 10_000, lid: { is_open: false }, components: faulty }));
  await eventually(async () => expect((await events(fleet, serial, 'Device.HealthDegraded')).length).toBe(1));
  for (const s of [2, 3]) await publish(mqtt, topic, heartbeat(serial, { timestamp: t + s * 1000, lid: { is_open: true }, components: faulty }));

  const [cycle] = await eventually(async () => {
    const cycles = await lidCycles(fleet, serial);
    expect(cycles).toHaveLength(1);
    expect(cycles[0].status).toBe('COMPLETE');
    return cycles;
  });
  expect(cycle).toMatchObject({ startedAt: new Date(t + 2000).toISOString(), endedAt: new Date(t + 10_000).toISOString() });
});

test('a lid opened and closed while the ingest worker was down, with other robots sending meanwhile, is one cycle', async () => {
  const serials = Array.from({ length: 200 }, () => uniqueSerial('B'));
  const r = await simulatedRobot(fleet);
  const others = new RobotSimulator({ mqttUrl: required('MQTT_URL'), serials, intervalMs: 100 });
  await others.start();
  try {
    await settle(1000);
    // The broker queues the backlog for the ingest's session and resends it mixed with live heartbeats.
    await fleet.restartIngest(async () => {
      await r.sim.moveLid(r.serial, true);
      await settle(1000);
      await r.sim.moveLid(r.serial, false);
      await settle(1000);
    });
    const [cycle] = await eventually(async () => {
      const cycles = await lidCycles(fleet, r.serial);
      expect(cycles).toHaveLength(1);
      expect(cycles[0].status).toBe('COMPLETE');
      return cycles;
    });
    expect(cycle.forced).toBe(true);
  } finally {
    await others.stop();
    await r.stop();
  }
});

test('the magic-lid flow pushes the PIN to the robot sealed, and the robot unlocks itself when it is typed', async () => {
  const r = await simulatedRobot(fleet);
  try {
    const pin = '5647382910';
    const set = await setPin(r.serial, { pin, pinType: 'MERCHANT', contextId: 'delivery-11', expiresAt: inMinutes(10), flow: 'magic-lid' });
    expect(set.body).toMatchObject({ flow: 'magic-lid', setPinCommandId: expect.any(String) });
    const setPinId = set.body.setPinCommandId;
    await eventually(async () => expect(await command(fleet, r.serial, setPinId)).toMatchObject({ commandType: 'SET_PIN', status: 'EXECUTED', source: 'UNLOCK_PIN' }));
    expect(r.robot().localPin?.pin).toBe(pin);
    const shown = await command(fleet, r.serial, setPinId);
    expect(shown.parameters).toEqual({ pinType: 'MERCHANT', contextId: 'delivery-11', expiresAt: expect.any(String) });
    expect(await historyText(fleet, workflowIds.command(r.serial, setPinId))).not.toContain(pin);

    r.sim.enterPin(r.serial, pin);
    expect(r.robot().unlocked).toBe(true);
    await r.publish();
    await eventually(async () => expect(await events(fleet, r.serial, 'LidCycle.PinValidated')).toHaveLength(1));

    expect((await fleet.request('DELETE', `/v1/devices/${r.serial}/unlock-pin`)).body).toMatchObject({ cleared: true, clearPinCommandId: expect.any(String) });
    await eventually(() => expect(r.robot().localPin).toBeNull());
  } finally {
    await r.stop();
  }
});

test('the simulator runs a whole loading cycle on its own after an unlock: open, then closed in time', async () => {
  const r = await simulatedRobot(fleet, { lidAfterUnlock: { openAfterMs: 100, closeAfterMs: 300 } });
  try {
    const sent = await fleet.request('POST', `/v1/devices/${r.serial}/commands`, { commandType: 'UNLOCK_LID', parameters: { contextId: 'trip-8' } });
    expect(sent.status).toBe(202);
    const [cycle] = await eventually(async () => {
      const cycles = await lidCycles(fleet, r.serial);
      expect(cycles.map((c) => c.status)).toEqual(['COMPLETE']);
      return cycles;
    });
    expect(cycle).toMatchObject({ contextId: 'trip-8', forced: false, unlockCommandId: sent.body.commandId });
  } finally {
    await r.stop();
  }
});

test('a PIN never reaches the rejected-message store, even in a heartbeat that fails validation', async () => {
  const serial = `LR${Date.now()}`;
  await publish(mqtt, `robot/${serial}/status`, { ...heartbeat(serial), events: [{ type: 'PIN_ENTRY', pin: '97531086421', timestamp: Date.now() }] });
  const row = await eventually(async () => {
    const found = await fleet.prisma.rejectedMessage.findFirst({ where: { topic: `robot/${serial}/status` } });
    expect(found).not.toBeNull();
    return found!;
  });
  expect(row.reason).toMatch(/^events\.0\.pin: /);
  expect(row.payload).not.toContain('97531086421');
  expect(row.payload).toContain('"pin":"[redacted]"');
});

describe('bad input to the lid routes is a 400 naming the field', () => {
  let serial: string;
  beforeAll(async () => {
    serial = `LB${Date.now()}`;
    await publish(mqtt, `robot/${serial}/status`, heartbeat(serial));
    await eventually(async () => expect((await fleet.api(`/v1/devices/${serial}`)).status).toBe(200));
  });

  const good = () => ({ pin: '1234', pinType: 'MERCHANT', contextId: 'delivery-1', expiresAt: inMinutes(5) });
  const cases: [string, () => Promise<{ status: number; body: any }>, string][] = [
    ['PUT unlock-pin: pin', () => setPin(serial, { ...good(), pin: '12ab' }), 'pin'],
    ['PUT unlock-pin: missing pin', () => setPin(serial, { ...good(), pin: undefined }), 'pin'],
    ['PUT unlock-pin: pinType', () => setPin(serial, { ...good(), pinType: 'COURIER' }), 'pinType'],
    ['PUT unlock-pin: contextId', () => setPin(serial, { ...good(), contextId: '' }), 'contextId'],
    ['PUT unlock-pin: expiresAt format', () => setPin(serial, { ...good(), expiresAt: 'tomorrow' }), 'expiresAt'],
    ['PUT unlock-pin: expiresAt in the past', () => setPin(serial, { ...good(), expiresAt: inMinutes(-1) }), 'expiresAt'],
    ['PUT unlock-pin: flow', () => setPin(serial, { ...good(), flow: 'bluetooth' }), 'flow'],
    ['PUT unlock-pin: serial', () => fleet.request('PUT', '/v1/devices/bad%20serial/unlock-pin', good()), 'serial'],
    ['DELETE unlock-pin: serial', () => fleet.request('DELETE', '/v1/devices/bad%20serial/unlock-pin'), 'serial'],
    ['GET unlock-pin: serial', () => fleet.api('/v1/devices/bad%20serial/unlock-pin'), 'serial'],
    ['validate: pin', () => fleet.request('POST', `/v1/devices/${serial}/unlock-pin/validate`, { pin: 1234 }), 'pin'],
    ['validate: serial', () => fleet.request('POST', '/v1/devices/bad%20serial/unlock-pin/validate', { pin: '1234' }), 'serial'],
    ['lid-cycles: pageSize', () => fleet.api(`/v1/devices/${serial}/lid-cycles?pageSize=0`), 'pageSize'],
    ['lid-cycles: pageToken', () => fleet.api(`/v1/devices/${serial}/lid-cycles?pageToken=nonsense`), 'pageToken'],
    ['lid-cycles: serial', () => fleet.api('/v1/devices/bad%20serial/lid-cycles'), 'serial'],
    ['lid-cycle: cycleId', () => fleet.api('/v1/lid-cycles/not-a-uuid'), 'cycleId'],
  ];

  test.each(cases)('%s', async (_name, call, field) => {
    const res = await call();
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('INVALID_ARGUMENT');
    expect(res.body.error.message.startsWith(`${field}: `)).toBe(true);
  });

  test('unknown robots and cycles are 404s, and a read-only key cannot set or validate a PIN', async () => {
    expect((await setPin(`NOSUCH${serial}`, good())).status).toBe(404);
    expect((await fleet.api('/v1/lid-cycles/00000000-0000-4000-8000-000000000000')).status).toBe(404);
    expect((await fleet.request('PUT', `/v1/devices/${serial}/unlock-pin`, good(), fleet.keys.read)).status).toBe(403);
    expect((await fleet.request('POST', `/v1/devices/${serial}/unlock-pin/validate`, { pin: '1234' }, fleet.keys.read)).status).toBe(403);
    expect((await fleet.request('GET', `/v1/devices/${serial}/lid-cycles`, undefined, fleet.keys.read)).status).toBe(200);
  });
});
