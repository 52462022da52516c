import mqtt from 'mqtt';
import { startMqttBroker } from '../infra/mqtt-broker';

/**
 * Does a persistent subscriber that comes back get each robot's messages in order? The ingest's
 * session is away for `awayMs` while `robots` publishers send a numbered message every 100 ms, and
 * keep sending while it reconnects. Counts messages that arrived after a newer one of the same
 * robot (the embedded aedes broker resends the backlog while delivering live messages).
 *
 *   node --import tsx bench/broker-order.ts [robots=200] [awayMs=3000]
 */

async function main(robots: number, awayMs: number): Promise<void> {
  const broker = await startMqttBroker({ port: 0 });
  const away = await mqtt.connectAsync(broker.url, { clientId: 'ingest', clean: false });
  await away.subscribeAsync('robot/+/status', { qos: 1 });
  await away.endAsync();
  const publishers = await Promise.all(Array.from({ length: robots }, (_, i) => mqtt.connectAsync(broker.url, { clientId: `robot-${i}` })));
  let seq = 0;
  let running = true;
  const publishing = (async () => {
    while (running) {
      seq++;
      await Promise.all(publishers.map((p, i) => p.publishAsync(`robot/R${i}/status`, String(seq), { qos: 1 })));
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  await new Promise((r) => setTimeout(r, awayMs));
  const newest = new Map<string, number>();
  let received = 0;
  let afterNewer = 0;
  const back = mqtt.connect(broker.url, { clientId: 'ingest', clean: false });
  back.on('message', (topic, payload) => {
    received++;
    const n = Number(payload.toString());
    if (n < (newest.get(topic) ?? 0)) afterNewer++;
    newest.set(topic, Math.max(newest.get(topic) ?? 0, n));
  });
  await new Promise((r) => setTimeout(r, awayMs + 1000));
  running = false;
  await publishing;
  console.log(JSON.stringify({ robots, awayMs, received, afterNewer }));
  await back.endAsync();
  await Promise.all(publishers.map((p) => p.endAsync()));
  await broker.stop();
}

void main(Number(process.argv[2] ?? 200), Number(process.argv[3] ?? 3000));
