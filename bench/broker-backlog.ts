import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import mqtt, { type MqttClient } from 'mqtt';
import { freePort } from '../infra/ports';

/**
 * What a QoS 1 backlog costs the embedded broker: a persistent subscriber that keeps N messages
 * unacknowledged (as the ingest worker does while a batch is written, or more when it lags), and a
 * publisher sending M messages as fast as the broker takes them. Broker CPU per 1,000 messages, for
 * aedes' stock in-memory persistence and for infra/mqtt-persistence.ts.
 *
 *   node --import tsx bench/broker-backlog.ts [messages=40000] [inFlight=0,2000,10000]
 */

const cpuMs = (pid: number) => {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
};

function holdAcks(client: MqttClient, keep: number): { release(): void } {
  const internals = client as unknown as { _sendPacket: (p: { cmd: string }, cb?: () => void) => void };
  const send = internals._sendPacket.bind(client);
  const held: { cmd: string }[] = [];
  internals._sendPacket = (packet, cb) => {
    if (packet.cmd !== 'puback') return send(packet, cb);
    held.push(packet);
    cb?.();
    while (held.length > keep) send(held.shift()!);
  };
  return { release: () => held.splice(0).forEach((p) => send(p)) };
}

async function run(kind: 'stock' | 'indexed', messages: number, inFlight: number): Promise<string> {
  const port = await freePort();
  const child = spawn(process.execPath, ['--import', 'tsx', 'bench/broker-process.ts', kind, String(port)], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve) => child.stdout!.once('data', () => resolve()));
  const url = `mqtt://127.0.0.1:${port}`;
  try {
    const sub = await mqtt.connectAsync(url, { clientId: 'ingest', clean: false });
    await sub.subscribeAsync('robot/+/status', { qos: 1 });
    const gate = holdAcks(sub, inFlight);
    let received = 0;
    sub.on('message', () => void (received += 1));
    const pub = await mqtt.connectAsync(url, { clientId: 'robots' });
    const payload = JSON.stringify({ serial: 'R0001', timestamp: Date.now(), pad: 'x'.repeat(500) });
    const before = cpuMs(child.pid!);
    const started = Date.now();
    let sent = 0;
    const lanes = Array.from({ length: 200 }, async () => {
      while (sent < messages) {
        sent += 1;
        await pub.publishAsync(`robot/R${sent % 2000}/status`, payload, { qos: 1 });
      }
    });
    await Promise.all(lanes);
    while (received < messages) await new Promise((r) => setTimeout(r, 20));
    const seconds = (Date.now() - started) / 1000;
    const cpu = cpuMs(child.pid!) - before;
    gate.release();
    await Promise.all([sub.endAsync(), pub.endAsync()]);
    return `${kind.padEnd(7)} ${String(inFlight).padStart(6)} unacknowledged: ${messages} messages in ${seconds.toFixed(1)} s (${Math.round(messages / seconds)}/s), broker ${Math.round((cpu / messages) * 1000)} CPU-ms per 1000`;
  } finally {
    child.kill();
  }
}

async function main(): Promise<void> {
  const messages = Number(process.argv[2] ?? 40_000);
  const inFlights = (process.argv[3] ?? '0,2000,10000').split(',').map(Number);
  for (const inFlight of inFlights) for (const kind of ['stock', 'indexed'] as const) console.log(await run(kind, messages, inFlight));
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
