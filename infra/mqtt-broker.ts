import { createServer, type Server } from 'node:net';
import { Aedes, type AedesOptions } from 'aedes';
import { createBrokerPersistence } from './mqtt-persistence';

/**
 * An embedded MQTT broker (aedes) on 127.0.0.1. Sessions and queued QoS 1 messages live in its
 * memory (infra/mqtt-persistence.ts): they survive a client's restart, not the broker's. Payloads are capped like AWS IoT Core's.
 */
export type RunningBroker = { url: string; stop(): Promise<void> };

export const MAX_MQTT_PAYLOAD_BYTES = 128 * 1024;

export async function startMqttBroker(opts: { port: number; host?: string }): Promise<RunningBroker> {
  const broker = await Aedes.createBroker({
    persistence: createBrokerPersistence() as AedesOptions['persistence'],
    authorizePublish: (_client, packet, callback) =>
      callback(packet.payload.length > MAX_MQTT_PAYLOAD_BYTES ? new Error('payload too large') : null),
  });
  const server: Server = createServer(broker.handle);
  const host = opts.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, host, () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : opts.port;
  return {
    url: `mqtt://${host}:${port}`,
    stop: async () => {
      await new Promise<void>((resolve) => broker.close(() => resolve()));
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

if (require.main === module) {
  const port = Number(process.env.MQTT_PORT ?? 1883);
  void startMqttBroker({ port }).then((b) => console.log(`MQTT broker on ${b.url}`));
}
