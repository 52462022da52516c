import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { installAckGate } from '../ingest/ack-gate';
import { freePort } from '../infra/ports';

/**
 * The embedded broker's persistent sessions on the indexed outgoing queue (infra/mqtt-persistence.ts):
 * what aedes must keep for a QoS 1 subscriber, in order, until it is acknowledged, and no longer.
 * The broker runs as its own process, as `npm start` runs it (aedes is an ES module Jest cannot load).
 */

let broker: ChildProcess;
let url: string;
const clients: MqttClient[] = [];

beforeAll(async () => {
  const port = await freePort();
  url = `mqtt://127.0.0.1:${port}`;
  broker = spawn(process.execPath, ['--import', 'tsx', join(__dirname, '..', 'infra', 'mqtt-broker.ts')], { env: { ...process.env, MQTT_PORT: String(port) }, stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    broker.stdout!.on('data', (chunk: Buffer) => chunk.toString().includes('MQTT broker on') && resolve());
    broker.once('exit', (code) => reject(new Error(`broker exited (${code})`)));
  });
});

afterAll(async () => {
  await Promise.all(clients.map((c) => c.endAsync(true)));
  broker?.kill();
});

/** Connects, collecting from the start: a persistent session's queued messages may arrive with the CONNACK. */
const connect = async (clientId: string, clean = false) => {
  const client = mqtt.connect(url, { clientId, clean, reconnectPeriod: 0 });
  clients.push(client);
  const got: number[] = [];
  client.on('message', (_topic, payload) => got.push(Number(payload.toString())));
  await new Promise<void>((resolve, reject) => {
    client.once('connect', () => resolve());
    client.once('error', reject);
  });
  return { client, got };
};

async function until(check: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function publishAll(from: number, to: number): Promise<void> {
  const { client: publisher } = await connect(`pub-${Math.random()}`, true);
  for (let i = from; i < to; i++) await publisher.publishAsync('t/x', String(i), { qos: 1 });
  await publisher.endAsync();
}

test('a persistent session receives, in order, what was published while it was away, and only once it is acknowledged', async () => {
  const { client: first } = await connect('session-a');
  await first.subscribeAsync('t/x', { qos: 1 });
  await first.endAsync();
  await publishAll(0, 300);

  const { client: back, got } = await connect('session-a');
  await until(() => got.length >= 300);
  expect(got).toEqual(Array.from({ length: 300 }, (_, i) => i));
  await back.endAsync();

  const { client: again, got: more } = await connect('session-a');
  await new Promise((r) => setTimeout(r, 500));
  expect(more).toEqual([]);
  await again.endAsync();
});

test('messages not acknowledged before a disconnect come again after it, acknowledged ones do not', async () => {
  const { client: sub, got } = await connect('session-b');
  await sub.subscribeAsync('t/x', { qos: 1 });
  const gate = installAckGate(sub);
  await publishAll(1000, 1050);
  await until(() => got.length >= 50);
  gate.take()(); // the first 50 acknowledged
  await publishAll(1050, 1100);
  await until(() => got.length >= 100);
  // The broker takes a connection's packets in order: its SUBACK comes once the PUBACKs before it are in.
  await sub.subscribeAsync('t/flush', { qos: 1 });
  await sub.endAsync(true); // the last 50 never acknowledged

  const { got: redelivered } = await connect('session-b');
  await until(() => redelivered.length >= 50);
  await new Promise((r) => setTimeout(r, 300));
  expect(redelivered).toEqual(Array.from({ length: 50 }, (_, i) => 1050 + i));
});
