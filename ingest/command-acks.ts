import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { subscriptionFor } from './mqtt-ingest';
import { ACK_TOPIC_FILTER, parseCommandAck, type CommandAck } from '../domain/commands';
import type { RejectedMessage } from '../store/rejected-messages';

/**
 * Robots' command acknowledgements (`robot/<serial>/command/ack`) to their command workflows.
 * Its own MQTT session (QoS 1, clean: false), and a message is acknowledged to the broker only
 * once its signal is in Temporal, so a crash loses no ack; a repeated ack changes nothing (the
 * workflow only moves forward). An ack for a command no workflow waits on any more is dropped.
 */
export type AckConsumerDeps = {
  signal(serial: string, ack: CommandAck): Promise<'signalled' | 'no-workflow'>;
  storeRejected(rejected: RejectedMessage[]): Promise<void>;
  onRejected?(reason: string): void;
  onDropped?(serial: string, ack: CommandAck): void;
  onRetry?(error: unknown): void;
  /** Ends the retries of a consumer being closed; what is unfinished is redelivered to the next one. */
  stopped?(): boolean;
};

export async function handleAck(deps: AckConsumerDeps, topic: string, payload: Buffer, receivedAt = Date.now()): Promise<void> {
  const parsed = parseCommandAck(topic, payload);
  if (!parsed.ok) {
    deps.onRejected?.(parsed.reason);
    await retrying(deps, () => deps.storeRejected([{ topic: topic.slice(0, 512), payload: payload.subarray(0, 4096).toString('utf8').replaceAll('\u0000', '\\u0000'), reason: parsed.reason, receivedAt }]));
    return;
  }
  const outcome = await retrying(deps, () => deps.signal(parsed.serial, parsed.ack));
  if (outcome === 'no-workflow') deps.onDropped?.(parsed.serial, parsed.ack);
}

async function retrying<T>(deps: AckConsumerDeps, fn: () => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn();
    } catch (error) {
      if (deps.stopped?.()) throw error;
      deps.onRetry?.(error);
      await new Promise((r) => setTimeout(r, Math.min(100 * 2 ** attempt, 5_000)));
    }
  }
}

export type AckConsumer = { mqtt: MqttClient; close(): Promise<void> };

export async function connectCommandAcks(opts: {
  mqttUrl: string;
  clientId: string;
  deps: AckConsumerDeps;
  /** With several ingest workers, they split the acks as members of this shared-subscription group. */
  shareGroup?: string;
  connectOptions?: IClientOptions;
  onError?: (e: Error) => void;
}): Promise<AckConsumer> {
  let stopped = false;
  const deps = { ...opts.deps, stopped: () => stopped };
  const client = mqtt.connect(opts.mqttUrl, { ...opts.connectOptions, clientId: opts.clientId, clean: false, reconnectPeriod: 1000, connectTimeout: 10_000, resubscribe: true });
  // mqtt.js sends the PUBACK when this calls back; an error leaves the message unacknowledged for redelivery.
  client.handleMessage = (packet, done) => {
    handleAck(deps, packet.topic, packet.payload as Buffer).then(() => done(), (error) => done(error));
  };
  client.on('error', (e) => opts.onError?.(e));
  client.on('connect', () => client.subscribe(subscriptionFor(ACK_TOPIC_FILTER, opts.shareGroup), { qos: 1 }));
  await new Promise<void>((resolve, reject) => {
    client.once('connect', () => resolve());
    client.once('error', reject);
  });
  return {
    mqtt: client,
    close: async () => {
      stopped = true;
      await client.endAsync();
    },
  };
}
