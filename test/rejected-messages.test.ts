import type { MqttClient } from 'mqtt';
import { eventually, startFleet, uniqueSerial, type TestFleet } from './support/fleet';
import { connectRobot, heartbeat, publish } from './support/robot';
import { pruneRejectedMessages } from '../store/rejected-messages';

/** GET /v1/rejected-messages: what the ingest could not take as it was, and why, paged like GET /v1/events. */

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

describe('GET /v1/rejected-messages', () => {
  test('lists a robot\'s rejected messages with their reason, oldest first, PINs redacted, paged by cursor', async () => {
    const serial = uniqueSerial('RJ');
    // Rejected whole (no serial), applied without a part (a bad battery), and a PIN entry beside a bad lid.
    await publish(robot, `robot/${serial}/status`, { ...heartbeat(serial), serial: undefined });
    await publish(robot, `robot/${serial}/status`, { ...heartbeat(serial), batteries: [{ index: 0, charge_percent: 300 }] });
    await publish(robot, `robot/${serial}/status`, { ...heartbeat(serial), lid: { is_open: 'yes' }, events: [{ type: 'PIN_ENTRY', pin: '4321', timestamp: Date.now() }] });
    const all = await eventually(async () => {
      const res = await read(`/v1/rejected-messages?serial=${serial}`);
      expect(res.body.rejectedMessages).toHaveLength(3);
      return res.body;
    });
    expect(all.rejectedMessages.map((m: { serial: string; topic: string }) => [m.serial, m.topic])).toEqual(Array(3).fill([serial, `robot/${serial}/status`]));
    expect(all.rejectedMessages.map((m: { applied: boolean }) => m.applied)).toEqual([false, true, true]);
    expect(all.rejectedMessages[0].reason).toMatch(/^serial: /);
    expect(all.rejectedMessages[1].reason).toMatch(/^batteries\.0/);
    expect(all.rejectedMessages[2].payload).toContain('"pin":"[redacted]"');
    expect(all.rejectedMessages[2].payload).not.toContain('4321');
    expect(all.nextCursor).toBe(all.rejectedMessages[2].id);

    const first = await read(`/v1/rejected-messages?serial=${serial}&limit=1`);
    expect(first.body.rejectedMessages).toEqual([all.rejectedMessages[0]]);
    const rest = await read(`/v1/rejected-messages?serial=${serial}&after=${first.body.nextCursor}`);
    expect(rest.body.rejectedMessages).toEqual(all.rejectedMessages.slice(1));
    // The cursor stays put on an empty page.
    const none = await read(`/v1/rejected-messages?serial=${serial}&after=${all.nextCursor}`);
    expect(none.body).toEqual({ rejectedMessages: [], nextCursor: all.nextCursor });
  });

  test('without serial it lists every robot\'s, after the cursor', async () => {
    const serials = [uniqueSerial('RJ'), uniqueSerial('RJ')];
    // The newest cursor: page to the end of what the shared database holds.
    let cursor: string | null = null;
    for (;;) {
      const page: { rejectedMessages: unknown[]; nextCursor: string | null } = (await read(`/v1/rejected-messages?limit=1000${cursor ? `&after=${cursor}` : ''}`)).body;
      cursor = page.nextCursor;
      if (page.rejectedMessages.length < 1000) break;
    }
    for (const serial of serials) await publish(robot, `robot/${serial}/status`, { ...heartbeat(serial), timestamp: 'soon' });
    await eventually(async () => {
      const res = await read(`/v1/rejected-messages${cursor ? `?after=${cursor}` : ''}`);
      expect(res.body.rejectedMessages.map((m: { serial: string }) => m.serial)).toEqual(expect.arrayContaining(serials));
    });
  });

  test('an invalid serial, after or limit is a 400 naming it', async () => {
    for (const [query, field] of [['serial=a%20b', 'serial'], ['after=-1', 'after'], ['after=x', 'after'], ['limit=0', 'limit'], ['limit=1001', 'limit']]) {
      const res = await read(`/v1/rejected-messages?${query}`);
      expect([query, res.status, res.body.error.message]).toEqual([query, 400, expect.stringMatching(new RegExp(`^${field}: `))]);
    }
  });

  test('messages past their keeping time are deleted, in chunks, and no others', async () => {
    const serial = uniqueSerial('RJOLD');
    const at = (iso: string) => ({ topic: `robot/${serial}/status`, payload: '{}', reason: 'serial: Required', serialNumber: serial, receivedAt: new Date(iso) });
    await fleet.prisma.rejectedMessage.createMany({ data: [at('2001-01-01T00:00:00Z'), at('2001-01-02T00:00:00Z'), at('2001-01-03T00:00:00Z'), at('2001-02-01T00:00:00Z')] });
    expect(await pruneRejectedMessages(fleet.prisma, new Date('2001-01-15T00:00:00Z'), 2)).toBe(3);
    const left = await fleet.prisma.rejectedMessage.findMany({ where: { serialNumber: serial } });
    expect(left.map((m) => m.receivedAt.toISOString())).toEqual(['2001-02-01T00:00:00.000Z']);
  });
});
