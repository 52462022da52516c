import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { installAckGate, type AckGate } from './ack-gate';
import type { HeartbeatPipeline } from './heartbeat-pipeline';

export const STATUS_TOPIC_FILTER = 'robot/+/status';

/** A subscription, as a member of the shared-subscription group when there is one (`$share/<group>/<filter>`). */
export const subscriptionFor = (filter: string, shareGroup?: string) => (shareGroup ? `$share/${shareGroup}/${filter}` : filter);

export type MqttIngestOptions = {
  mqttUrl: string;
  /** The first connection's client id; the others add `-2`, `-3`, ... */
  clientId: string;
  pipeline: HeartbeatPipeline;
  /** Several ingest workers (and connections) split the robots' messages as members of this group. */
  shareGroup?: string;
  connections?: number;
  /** Most messages one connection holds unacknowledged (AWS IoT Core allows 100): past it, the batch is written first. */
  maxUnacked?: number;
  /** TLS and anything else every connection takes (infra/mqtt-options.ts). */
  connectOptions?: IClientOptions;
  onError?: (error: Error) => void;
};

/**
 * Subscribes the pipeline to robot heartbeats: QoS 1 on persistent sessions (clean: false), so
 * messages published while the ingest worker is down wait at the broker, acknowledged only once
 * handled (see ack-gate.ts). Each connection has its own client id and session; with a share group
 * the broker hands each message to one member, so any number of connections and workers split the
 * load. A connection that holds `maxUnacked` messages stops reading until its batch is written.
 */
export async function connectIngest(opts: MqttIngestOptions): Promise<{ clients: MqttClient[]; close(): Promise<void> }> {
  const count = opts.connections ?? 1;
  const gates: AckGate[] = [];
  // The pipeline's batch takes the acknowledgements held on every connection. Set before connecting:
  // a persistent session's backlog arrives at once, and its batches must take their acknowledgements.
  opts.pipeline.setAckSource(() => {
    const releases = gates.map((g) => g.take());
    return () => releases.forEach((release) => release());
  });
  const clients = await Promise.all(Array.from({ length: count }, (_, i) => connectOne(opts, i === 0 ? opts.clientId : `${opts.clientId}-${i + 1}`, gates)));
  return { clients, close: async () => void (await Promise.all(clients.map((c) => c.endAsync()))) };
}

async function connectOne(opts: MqttIngestOptions, clientId: string, gates: AckGate[]): Promise<MqttClient> {
  const client = mqtt.connect(opts.mqttUrl, { ...opts.connectOptions, clientId, clean: false, reconnectPeriod: 1000, connectTimeout: 10_000, resubscribe: true });
  const gate = installAckGate(client);
  gates.push(gate);
  const maxUnacked = opts.maxUnacked ?? 100;
  const full = () => gate.held() >= maxUnacked || opts.pipeline.isFull();
  const room = async () => {
    while (full()) {
      await opts.pipeline.flush();
      if (full()) await new Promise((r) => setTimeout(r, 10));
    }
  };
  // Attached before the connection: a persistent session's queued messages come right after CONNACK.
  client.handleMessage = (packet, done) => {
    const accept = () => {
      opts.pipeline.accept(packet.topic, packet.payload as Buffer);
      done();
    };
    if (!full()) return accept();
    void room().then(accept, accept);
  };
  client.on('error', (e) => opts.onError?.(e));
  // Subscribing again on every connect: Mosquitto forgets a shared subscription across its restart.
  client.on('connect', () => client.subscribe(subscriptionFor(STATUS_TOPIC_FILTER, opts.shareGroup), { qos: 1 }));
  await new Promise<void>((resolve, reject) => {
    client.once('connect', () => resolve());
    client.once('error', reject);
  });
  return client;
}
