import mqtt, { type MqttClient } from 'mqtt';
import { installAckGate } from './ack-gate';
import type { HeartbeatPipeline } from './heartbeat-pipeline';

export const STATUS_TOPIC_FILTER = 'robot/+/status';

/**
 * Subscribes the pipeline to robot heartbeats: QoS 1 on a persistent session (clean: false), so
 * messages published while the ingest worker is down wait at the broker, and acknowledged only
 * once handled (see ack-gate.ts).
 */
export async function connectIngest(opts: {
  mqttUrl: string;
  clientId: string;
  pipeline: HeartbeatPipeline;
  onError?: (error: Error) => void;
}): Promise<MqttClient> {
  const client = mqtt.connect(opts.mqttUrl, {
    clientId: opts.clientId,
    clean: false,
    reconnectPeriod: 1000,
    connectTimeout: 10_000,
    resubscribe: true,
  });
  const gate = installAckGate(client);
  opts.pipeline.setAckSource(() => gate.take());
  client.handleMessage = (packet, done) => {
    const accept = () => {
      opts.pipeline.accept(packet.topic, packet.payload as Buffer);
      done();
    };
    if (!opts.pipeline.isFull()) return accept();
    void opts.pipeline.whenRoom().then(accept, accept);
  };
  client.on('error', (e) => opts.onError?.(e));
  // Subscribing again on every connect is harmless and covers a broker that lost the session.
  client.on('connect', () => client.subscribe(STATUS_TOPIC_FILTER, { qos: 1 }));
  await new Promise<void>((resolve, reject) => {
    client.once('connect', () => resolve());
    client.once('error', reject);
  });
  return client;
}
