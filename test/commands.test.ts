import type { MqttClient } from 'mqtt';
import pino from 'pino';
import { issueCommand } from '../api/commands';
import { eventually, startFleet, type TestFleet } from './support/fleet';
import { command, settle, simulatedRobot } from './support/lid';
import { connectRobot, heartbeat, publish } from './support/robot';

/** Commands to robots: POST, MQTT out, acks back, the tracker's states, durability across a worker stop. */

let fleet: TestFleet;
let mqtt: MqttClient;

beforeAll(async () => {
  fleet = await startFleet({ COMMAND_TIMEOUT_SECONDS: '20' });
  mqtt = await connectRobot();
});

afterAll(async () => {
  await mqtt?.endAsync();
  await fleet?.stop();
});

const send = (serial: string, body: object, key?: string) => fleet.request('POST', `/v1/devices/${serial}/commands`, body, key);

test('a command is published on robot/<serial>/command and followed through SENT, ACKNOWLEDGED to EXECUTED', async () => {
  const r = await simulatedRobot(fleet);
  try {
    const sent = await send(r.serial, { commandType: 'HONK', parameters: { seconds: '2' } });
    expect(sent).toMatchObject({ status: 202, body: { commandId: expect.any(String), status: expect.stringMatching(/^(PENDING|SENT)$/) } });
    expect(Object.keys(sent.body).sort()).toEqual(['commandId', 'sentAt', 'status']);
    const done = await eventually(async () => {
      const c = await command(fleet, r.serial, sent.body.commandId);
      expect(c.status).toBe('EXECUTED');
      return c;
    });
    expect(done).toMatchObject({ commandType: 'HONK', parameters: { seconds: '2' }, source: 'API', sentAt: expect.any(String), acknowledgedAt: expect.any(String), completedAt: expect.any(String) });
    expect(Date.parse(done.sentAt)).toBeLessThanOrEqual(Date.parse(done.acknowledgedAt));
    const [received] = r.robot().commands;
    expect(received).toEqual({ commandId: sent.body.commandId, type: 'HONK', parameters: { seconds: '2' }, issuedAt: Date.parse(done.issuedAt), expiresAt: Date.parse(done.expiresAt) });
    expect(received.expiresAt - received.issuedAt).toBe(20_000);
  } finally {
    await r.stop();
  }
});

test('the same requestId twice returns the first command, sent once', async () => {
  const r = await simulatedRobot(fleet);
  try {
    const first = await send(r.serial, { commandType: 'FLASH_LIGHTS', requestId: 'mc-123' });
    const second = await send(r.serial, { commandType: 'FLASH_LIGHTS', requestId: 'mc-123' });
    expect(first.status).toBe(202);
    expect(second.status).toBe(200);
    expect(second.body.commandId).toBe(first.body.commandId);
    await eventually(async () => expect((await command(fleet, r.serial, first.body.commandId)).status).toBe('EXECUTED'));
    const third = await send(r.serial, { commandType: 'FLASH_LIGHTS', requestId: 'mc-123', timeoutSeconds: 5 });
    expect(third).toMatchObject({ status: 200, body: { commandId: first.body.commandId, status: 'EXECUTED' } });
    await settle();
    expect(r.robot().commands.map((c) => c.commandId)).toEqual([first.body.commandId]);
    const other = await send(r.serial, { commandType: 'FLASH_LIGHTS', requestId: 'mc-124' });
    expect(other.body.commandId).not.toBe(first.body.commandId);
  } finally {
    await r.stop();
  }
});

test('a robot that refuses a command fails it, with its message', async () => {
  const r = await simulatedRobot(fleet);
  try {
    r.sim.setCommandReply(r.serial, 'fail');
    const sent = await send(r.serial, { commandType: 'REBOOT' });
    await eventually(async () => expect(await command(fleet, r.serial, sent.body.commandId)).toMatchObject({ status: 'FAILED', message: 'refused by the simulator' }));
  } finally {
    await r.stop();
  }
});

test('a robot that never answers times the command out', async () => {
  const r = await simulatedRobot(fleet);
  try {
    r.sim.setCommandReply(r.serial, 'ignore');
    const sent = await send(r.serial, { commandType: 'LOCK_LID', timeoutSeconds: 1 });
    const timedOut = await eventually(async () => {
      const c = await command(fleet, r.serial, sent.body.commandId);
      expect(c.status).toBe('TIMEOUT');
      return c;
    });
    expect(timedOut.sentAt).not.toBeNull();
    expect(r.robot().commands.map((c) => c.commandId)).toEqual([sent.body.commandId]);
  } finally {
    await r.stop();
  }
});

test('acks that come twice or out of order never move a command backwards; a bad ack is kept as rejected', async () => {
  const serial = `CA${Date.now()}`;
  const robot = await connectRobot();
  try {
    const received: any[] = [];
    robot.on('message', (_topic, payload) => received.push(JSON.parse(payload.toString())));
    await robot.subscribeAsync(`robot/${serial}/command`, { qos: 1 });
    await publish(robot, `robot/${serial}/status`, heartbeat(serial));
    await eventually(async () => expect((await fleet.api(`/v1/devices/${serial}`)).status).toBe(200));

    const sent = await send(serial, { commandType: 'EMERGENCY_STOP' });
    const [message] = await eventually(() => {
      expect(received).toHaveLength(1);
      return received;
    });
    expect(message).toEqual({ commandId: sent.body.commandId, type: 'EMERGENCY_STOP', parameters: {}, issuedAt: expect.any(Number), expiresAt: expect.any(Number) });
    await eventually(async () => expect((await command(fleet, serial, sent.body.commandId)).status).toBe('SENT'));

    const ack = (status: string) => publish(robot, `robot/${serial}/command/ack`, { commandId: sent.body.commandId, status, message: status.toLowerCase() });
    await ack('EXECUTED');
    await ack('ACKNOWLEDGED');
    await ack('EXECUTED');
    await ack('FAILED');
    await eventually(async () => expect((await command(fleet, serial, sent.body.commandId)).status).toBe('EXECUTED'));
    await settle();
    expect(await command(fleet, serial, sent.body.commandId)).toMatchObject({ status: 'EXECUTED', message: 'executed', acknowledgedAt: null });

    await publish(robot, `robot/${serial}/command/ack`, { commandId: 'not-a-uuid', status: 'EXECUTED' });
    await eventually(async () => {
      const rejected = await fleet.prisma.rejectedMessage.findFirst({ where: { topic: `robot/${serial}/command/ack` } });
      expect(rejected?.reason).toMatch(/^commandId: /);
    });
  } finally {
    await robot.endAsync();
  }
});

test('a worker stopped between accept and send sends the command once it is back, exactly once', async () => {
  const r = await simulatedRobot(fleet);
  try {
    await fleet.stopWorker();
    let sent: { status: number; body: any };
    try {
      sent = await send(r.serial, { commandType: 'UNLOCK_LID', requestId: 'durable-1' });
      expect(sent).toMatchObject({ status: 202, body: { status: 'PENDING', sentAt: null } });
      await settle(1000);
      expect((await command(fleet, r.serial, sent.body.commandId)).status).toBe('PENDING');
      expect(r.robot().commands).toEqual([]);
      expect((await send(r.serial, { commandType: 'UNLOCK_LID', requestId: 'durable-1' })).body.commandId).toBe(sent.body.commandId);
    } finally {
      await fleet.startWorker();
    }
    await eventually(async () => expect((await command(fleet, r.serial, sent.body.commandId)).status).toBe('EXECUTED'));
    await settle();
    expect(r.robot().commands.map((c) => c.commandId)).toEqual([sent.body.commandId]);
    expect(r.robot().unlocked).toBe(true);
  } finally {
    await r.stop();
  }
});

test('a command whose request dies right after its workflow starts is still stored and sent, once', async () => {
  const r = await simulatedRobot(fleet);
  try {
    // The request's own database writes fail, as if its process died once the workflow had started.
    const dying = new Proxy(fleet.prisma, {
      get: () => {
        throw new Error('the API process died');
      },
    });
    const deps = { prisma: dying, temporal: fleet.temporal, logger: pino({ level: 'silent' }), config: fleet.config, taskQueue: fleet.taskQueue };
    await expect(issueCommand(deps, { serial: r.serial, type: 'HONK', parameters: {}, requestId: null, timeoutMs: 20_000, source: 'API' })).rejects.toThrow(
      'the API process died',
    );
    const stored = await eventually(async () => {
      const row = await fleet.prisma.deviceCommand.findFirst({ where: { serialNumber: r.serial, commandType: 'HONK' } });
      expect(row?.status).toBe('EXECUTED');
      return row!;
    });
    await settle();
    expect(r.robot().commands.map((c) => c.commandId)).toEqual([stored.commandId]);
  } finally {
    await r.stop();
  }
});

describe('bad input to the command routes is a 400 naming the field', () => {
  let serial: string;
  beforeAll(async () => {
    serial = `CB${Date.now()}`;
    await publish(mqtt, `robot/${serial}/status`, heartbeat(serial));
    await eventually(async () => expect((await fleet.api(`/v1/devices/${serial}`)).status).toBe(200));
  });

  const cases: [string, () => Promise<{ status: number; body: any }>, string][] = [
    ['commandType missing', () => send(serial, {}), 'commandType'],
    ['commandType unknown', () => send(serial, { commandType: 'SELF_DESTRUCT' }), 'commandType'],
    ['parameters not strings', () => send(serial, { commandType: 'HONK', parameters: { seconds: 2 } }), 'parameters.seconds'],
    ['parameters not an object', () => send(serial, { commandType: 'HONK', parameters: 'loud' }), 'parameters'],
    ['SET_PIN without a pin', () => send(serial, { commandType: 'SET_PIN', parameters: {} }), 'parameters.pin'],
    ['requestId empty', () => send(serial, { commandType: 'HONK', requestId: '' }), 'requestId'],
    ['timeoutSeconds zero', () => send(serial, { commandType: 'HONK', timeoutSeconds: 0 }), 'timeoutSeconds'],
    ['timeoutSeconds not a number', () => send(serial, { commandType: 'HONK', timeoutSeconds: 'soon' }), 'timeoutSeconds'],
    ['serial in the path', () => send('bad%20serial', { commandType: 'HONK' }), 'serial'],
    ['commandId in the path', () => fleet.api(`/v1/devices/${serial}/commands/42`), 'commandId'],
  ];

  test.each(cases)('%s', async (_name, call, field) => {
    const res = await call();
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('INVALID_ARGUMENT');
    expect(res.body.error.message.startsWith(`${field}: `)).toBe(true);
  });

  test('unknown robots and commands are 404s; sending needs the operate scope', async () => {
    expect((await send(`NOSUCH${serial}`, { commandType: 'HONK' })).status).toBe(404);
    expect((await fleet.api(`/v1/devices/${serial}/commands/00000000-0000-4000-8000-000000000000`)).status).toBe(404);
    expect((await send(serial, { commandType: 'HONK' }, fleet.keys.read)).status).toBe(403);
  });
});
