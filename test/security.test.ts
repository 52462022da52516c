import { createHmac, randomUUID } from 'node:crypto';
import type { MqttClient } from 'mqtt';
import pino from 'pino';
import { eventually, startFleet, uniqueSerial, type TestFleet } from './support/fleet';
import { command, events, inMinutes, settle, simulatedRobot } from './support/lid';
import { connectRobot, heartbeat, publish } from './support/robot';
import { serveApi } from './support/second-api';

/**
 * Access beyond API keys: PINs kept out of the logs, PIN brute force at attack rates through the
 * API and the keypad, robots that can speak only for themselves, and the DriveU signature.
 */

const LOCKOUT_ATTEMPTS = 5;
const WEBHOOK_SECRET = `security-test-${randomUUID()}`;
const logLines: string[] = [];
// Everything the API, the ingest worker and the Temporal worker log, at every level.
const capture = pino({ level: 'trace' }, { write: (line: string) => void logLines.push(line) });

let fleet: TestFleet;
let mqtt: MqttClient;

beforeAll(async () => {
  fleet = await startFleet(
    {
      PIN_LOCKOUT_ATTEMPTS: String(LOCKOUT_ATTEMPTS),
      PIN_LOCKOUT_WINDOW_SECONDS: '600',
      PIN_LOCKOUT_SECONDS: '600',
      LID_PIN_FLOW: 'deviceless',
      DRIVEU_WEBHOOK_SECRET: WEBHOOK_SECRET,
      // The attack tests send hundreds of requests a second with one key: the PIN lockout, not the
      // rate limits (test/security-limits.test.ts, and the flood test below), is what they are about.
      API_RATE_LIMIT_PER_SECOND: '100000',
      API_RATE_BURST: '100000',
      PIN_CHECK_RATE_PER_SECOND: '0',
    },
    {},
    { logger: capture },
  );
  mqtt = await connectRobot();
});

afterAll(async () => {
  await mqtt?.endAsync();
  await fleet?.stop();
});

const setPin = (serial: string, body: object) => fleet.request('PUT', `/v1/devices/${serial}/unlock-pin`, body);
const validate = (serial: string, pin: string) => fleet.request('POST', `/v1/devices/${serial}/unlock-pin/validate`, { pin });

async function knownRobot(prefix: string): Promise<string> {
  const serial = uniqueSerial(prefix);
  await publish(mqtt, `robot/${serial}/status`, heartbeat(serial));
  await eventually(async () => expect((await fleet.api(`/v1/devices/${serial}`)).status).toBe(200));
  return serial;
}

/** Runs `fn` over `items` with `lanes` of them in flight at a time; answers in item order. */
async function inLanes<T, R>(lanes: number, items: T[], fn: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: lanes }, async () => {
      while (next < items.length) {
        const i = next++;
        results[i] = await fn(items[i]);
      }
    }),
  );
  return results;
}

const entriesBy = async (serial: string) => {
  const rows = await fleet.prisma.pinEntry.groupBy({ by: ['outcome'], where: { serialNumber: serial }, _count: true });
  return Object.fromEntries(rows.map((r) => [r.outcome, r._count]));
};

describe('PINs never reach the logs', () => {
  test('a whole PIN flow, deviceless and magic-lid, logs no plain PIN anywhere', async () => {
    const pins = { merchant: '4815162342', wrong: '9021090210', magic: '7395146028', invalid: '55512345678' };
    const r = await simulatedRobot(fleet);
    try {
      expect((await setPin(r.serial, { pin: pins.merchant, pinType: 'MERCHANT', contextId: 'sec-1', expiresAt: inMinutes(10) })).status).toBe(200);
      expect((await validate(r.serial, pins.wrong)).body).toEqual({ valid: false });
      expect((await validate(r.serial, pins.merchant)).body).toMatchObject({ valid: true });
      // Typed on the keypad: a wrong PIN, then the right one, which unlocks the lid.
      r.sim.enterPin(r.serial, pins.wrong);
      r.sim.enterPin(r.serial, pins.merchant);
      await r.publish();
      await eventually(() => expect(r.robot().commands.map((c) => c.type)).toContain('UNLOCK_LID'));
      // Magic Lid: the one place a plain PIN travels is the sealed SET_PIN to the robot.
      const magic = await setPin(r.serial, { pin: pins.magic, pinType: 'CUSTOMER', contextId: 'sec-2', expiresAt: inMinutes(10), flow: 'magic-lid' });
      expect(magic.status).toBe(200);
      await eventually(async () => expect((await command(fleet, r.serial, magic.body.setPinCommandId)).status).toBe('EXECUTED'));
      expect(r.robot().localPin?.pin).toBe(pins.magic);
      // A heartbeat whose PIN fails validation is logged, applied without that event.
      await publish(mqtt, `robot/${r.serial}/status`, { ...heartbeat(r.serial), events: [{ type: 'PIN_ENTRY', pin: pins.invalid, timestamp: Date.now() }] });
      await eventually(() => expect(logLines.some((l) => l.includes('heartbeat applied without parts') && l.includes('events.0.pin'))).toBe(true));
      expect((await fleet.request('DELETE', `/v1/devices/${r.serial}/unlock-pin`)).status).toBe(200);
      await eventually(async () => expect(await events(fleet, r.serial, 'LidCycle.PinValidated')).toHaveLength(2));
    } finally {
      await r.stop();
    }

    // The capture works: it holds lines from the ingest worker and from Temporal's worker.
    expect(logLines.some((l) => l.includes('"temporalLevel"'))).toBe(true);
    const leaks = logLines.filter((line) => Object.values(pins).some((pin) => line.includes(pin)));
    expect(leaks).toEqual([]);
  });
});

describe('PIN brute force at attack rates stays locked and never validates', () => {
  test('through the validate route at attack rate: exactly the allowed wrong guesses are judged, then all are refused, the right PIN too', async () => {
    const serial = await knownRobot('BF');
    expect((await setPin(serial, { pin: '2580', pinType: 'CUSTOMER', contextId: 'bf-api', expiresAt: inMinutes(30) })).status).toBe(200);

    // 8 attackers at once, each guessing as fast as the API answers (this fleet has no per-robot PIN check limit).
    const first = await inLanes(8, Array.from({ length: 100 }, (_, i) => String(i).padStart(4, '0')), (pin) => validate(serial, pin));
    expect(first.filter((a) => a.status === 200).map((a) => a.body)).toEqual(Array(LOCKOUT_ATTEMPTS).fill({ valid: false }));
    expect(first.filter((a) => a.status === 429)).toHaveLength(100 - LOCKOUT_ATTEMPTS);

    // Now the attackers have the right PIN among 100 more guesses: every one is refused.
    const guesses = Array.from({ length: 100 }, (_, i) => (i % 4 === 0 ? '2580' : String(5000 + i)));
    const second = await inLanes(8, guesses, (pin) => validate(serial, pin));
    expect(new Set(second.map((a) => a.status))).toEqual(new Set([429]));
    for (const a of second) expect(a.body.error).toMatchObject({ code: 'RESOURCE_EXHAUSTED', details: { lockedUntil: expect.any(String) } });

    expect(await entriesBy(serial)).toEqual({ WRONG: LOCKOUT_ATTEMPTS, LOCKED: 200 - LOCKOUT_ATTEMPTS });
    const status = await fleet.api(`/v1/devices/${serial}/unlock-pin`);
    expect(status.body.lockout).toMatchObject({ locked: true, attemptsLeft: 0 });
    expect(await events(fleet, serial, 'LidCycle.PinValidated')).toEqual([]);
  });

  test('a flood of simultaneous PIN checks on one robot is turned away before the database: 429s with Retry-After, never a 500', async () => {
    // The default burst of 10 PIN checks per robot, refilled so slowly here that the count is exact.
    const api = await serveApi(fleet, { PIN_CHECK_RATE_PER_SECOND: '0.001', PIN_CHECK_BURST: '10' }, capture);
    try {
      const serial = await knownRobot('BL');
      expect((await setPin(serial, { pin: '7777', pinType: 'CUSTOMER', contextId: 'bf-flood', expiresAt: inMinutes(30) })).status).toBe(200);
      const check = async (pin: string, key = fleet.keys.all) => {
        const res = await fetch(`${api.url}/v1/devices/${serial}/unlock-pin/validate`, {
          method: 'POST',
          headers: { 'x-api-key': key, 'content-type': 'application/json' },
          body: JSON.stringify({ pin }),
        });
        return { status: res.status, retryAfter: res.headers.get('retry-after'), body: (await res.json()) as any };
      };
      // Keys that may not check PINs use up nothing.
      for (let i = 0; i < 20; i++) expect((await check('1234', fleet.keys.read)).status).toBe(403);

      const answers = await Promise.all(Array.from({ length: 300 }, (_, i) => check(String(1000 + i))));
      expect(new Set(answers.map((a) => a.status))).toEqual(new Set([200, 429]));
      expect(answers.filter((a) => a.status === 200).every((a) => a.body.valid === false)).toBe(true);
      for (const a of answers.filter((x) => x.status === 429)) {
        expect(a.body.error.code).toBe('RESOURCE_EXHAUSTED');
        expect(Number(a.retryAfter)).toBeGreaterThanOrEqual(1);
      }
      // Only the burst reached the lockout; the rest never touched the database.
      const judged = await fleet.prisma.pinEntry.count({ where: { serialNumber: serial } });
      expect(judged).toBe(10);
      expect(answers.filter((a) => a.body.error?.message?.startsWith(`rate limit exceeded for PIN checks on ${serial}`))).toHaveLength(300 - judged);
      // Another robot's PIN checks have their own budget.
      const other = await knownRobot('BL');
      const otherCheck = await fetch(`${api.url}/v1/devices/${other}/unlock-pin/validate`, {
        method: 'POST',
        headers: { 'x-api-key': fleet.keys.all, 'content-type': 'application/json' },
        body: JSON.stringify({ pin: '1234' }),
      });
      expect(otherCheck.status).toBe(200);
    } finally {
      await api.close();
    }
  });

  test('through the keypad: 100 PIN entries in two fast heartbeats unlock nothing, the right PIN among them', async () => {
    const serial = await knownRobot('BK');
    expect((await setPin(serial, { pin: '1397', pinType: 'MERCHANT', contextId: 'bf-keypad', expiresAt: inMinutes(30) })).status).toBe(200);
    const commands: string[] = [];
    const listener = await connectRobot();
    try {
      await listener.subscribeAsync(`robot/${serial}/command`, { qos: 1 });
      listener.on('message', (_topic, payload) => commands.push(payload.toString()));
      const start = Date.now();
      for (let h = 0; h < 2; h++) {
        const entries = Array.from({ length: 50 }, (_, i) => {
          const n = h * 50 + i;
          // The first heartbeat is all wrong guesses; from the second on, every tenth is the right PIN.
          const pin = h > 0 && i % 10 === 0 ? '1397' : String(n).padStart(4, '0');
          return { type: 'PIN_ENTRY', pin, timestamp: start + n };
        });
        await publish(mqtt, `robot/${serial}/status`, heartbeat(serial, { timestamp: start + h * 50 + 49, events: entries }));
      }
      await eventually(async () => expect(await fleet.prisma.pinEntry.count({ where: { serialNumber: serial } })).toBe(100), 60_000, 250);
      expect(await entriesBy(serial)).toEqual({ WRONG: LOCKOUT_ATTEMPTS, LOCKED: 100 - LOCKOUT_ATTEMPTS });
      expect(await fleet.prisma.deviceCommand.count({ where: { serialNumber: serial, commandType: 'UNLOCK_LID' } })).toBe(0);
      expect(await events(fleet, serial, 'LidCycle.PinValidated')).toEqual([]);
      expect(await events(fleet, serial, 'LidCycle.PinEntryLocked')).toHaveLength(1);
      expect((await fleet.api(`/v1/devices/${serial}/unlock-pin`)).body.lockout.locked).toBe(true);
      expect(commands).toEqual([]);
    } finally {
      await listener.endAsync();
    }
  });
});

describe('a robot speaks only for its own serial', () => {
  test("a heartbeat on one robot's topic naming another robot is rejected and changes nothing about the other", async () => {
    const victim = await knownRobot('SV');
    const attacker = uniqueSerial('SA');
    await publish(mqtt, `robot/${attacker}/status`, heartbeat(victim, { lid: { is_open: true }, components: { GPS: 'CRITICAL_FAULT' } }));
    const row = await eventually(async () => {
      const found = await fleet.prisma.rejectedMessage.findFirst({ where: { topic: `robot/${attacker}/status` } });
      expect(found).not.toBeNull();
      return found!;
    });
    expect(row.reason).toBe(`serial: "${victim}" does not match topic serial "${attacker}"`);
    const device = (await fleet.api(`/v1/devices/${victim}`)).body;
    expect(device.lidState.isOpen).toBe(false);
    expect(await events(fleet, victim, 'Device.HealthDegraded')).toEqual([]);
    expect(await events(fleet, victim, 'LidCycle.Started')).toEqual([]);
    expect((await fleet.api(`/v1/devices/${attacker}`)).status).toBe(404);
  });

  test("an ack on one robot's topic for another robot's command does not move that command", async () => {
    const victim = await knownRobot('KV');
    const attacker = uniqueSerial('KA');
    const sent = await fleet.request('POST', `/v1/devices/${victim}/commands`, { commandType: 'HONK', timeoutSeconds: 120 });
    expect(sent.status).toBe(202);
    const { commandId } = sent.body;
    await eventually(async () => expect((await command(fleet, victim, commandId)).status).toBe('SENT'));

    // The attacker claims the victim's command was executed; then the victim itself only acknowledges it.
    await publish(mqtt, `robot/${attacker}/command/ack`, { commandId, status: 'EXECUTED' });
    await publish(mqtt, `robot/${victim}/command/ack`, { commandId, status: 'ACKNOWLEDGED' });
    await eventually(async () => expect((await command(fleet, victim, commandId)).status).toBe('ACKNOWLEDGED'));
    // Acks are handled in the order received, so the forged one was handled first; a status never moves back.
    await settle();
    expect((await command(fleet, victim, commandId)).status).toBe('ACKNOWLEDGED');
  });
});

describe('DriveU webhook signature', () => {
  const post = async (raw: string, signature?: string) => {
    const res = await fetch(`${fleet.url}/v1/webhooks/driveu`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(signature === undefined ? {} : { 'x-driveu-signature': signature }) },
      body: raw,
    });
    return { status: res.status, body: (await res.json()) as any };
  };
  const hmac = (raw: string, secret = WEBHOOK_SECRET) => createHmac('sha256', secret).update(raw).digest('hex');

  test('refuses tampered, missing, malformed and foreign signatures with 401, keeping nothing', async () => {
    const uuid = randomUUID();
    const raw = JSON.stringify({ eventName: 'status', unit: 'streamer', status: 'streaming', uuid, vin: null, time: Date.now() * 1000 });
    const tampered = raw.replace('streaming', 'offline');
    const cases: [string, string, string | undefined][] = [
      ['no header', raw, undefined],
      ['empty header', raw, ''],
      ['body changed after signing', tampered, `sha256=${hmac(raw)}`],
      ['signed with another secret', raw, `sha256=${hmac(raw, 'guessed-secret')}`],
      ['without the sha256= prefix', raw, hmac(raw)],
      ['another algorithm named', raw, `sha1=${hmac(raw)}`],
      ['truncated', raw, `sha256=${hmac(raw).slice(0, 32)}`],
      ['upper-case hex', raw, `sha256=${hmac(raw).toUpperCase()}`],
      ['twice', raw, `sha256=${hmac(raw)},sha256=${hmac(raw)}`],
      ['the signature of an empty body', raw, `sha256=${hmac('')}`],
    ];
    for (const [name, body, signature] of cases) {
      const res = await post(body, signature);
      expect([name, res.status, res.body.error?.code]).toEqual([name, 401, 'UNAUTHENTICATED']);
    }
    expect(await fleet.prisma.driveuEvent.count({ where: { uuid } })).toBe(0);
    // The same bytes correctly signed are taken.
    expect((await post(raw, `sha256=${hmac(raw)}`)).status).toBe(202);
    expect(await fleet.prisma.driveuEvent.count({ where: { uuid } })).toBe(1);
  });

  test('an empty or oversized body is refused without being kept', async () => {
    expect((await post('', `sha256=${hmac('')}`)).status).toBe(400);
    const uuid = randomUUID();
    const big = JSON.stringify({ eventName: 'status', unit: 'streamer', status: 'online', uuid, vin: 'x'.repeat(20_000), time: Date.now() * 1000 });
    const res = await post(big, `sha256=${hmac(big)}`);
    expect([res.status, res.body.error.code]).toEqual([413, 'PAYLOAD_TOO_LARGE']);
    expect(res.body.error.message).toMatch(/^body: larger than/);
    expect(await fleet.prisma.driveuEvent.count({ where: { uuid } })).toBe(0);
  });
});
