import { SendMessageBatchCommand, type SQSClient } from '@aws-sdk/client-sqs';
import mqtt, { type MqttClient } from 'mqtt';
import { installAckGate } from '../ingest/ack-gate';
import { STATUS_TOPIC_FILTER } from '../ingest/mqtt-ingest';

/**
 * What AWS does between the robots and the queue in production, played locally for
 * `INGEST_SOURCE=sqs npm start`, the tests and the benchmark: an IoT Rule
 * `SELECT *, topic() AS topic FROM 'robot/+/status'` with an SQS action. It takes the broker's
 * heartbeats (QoS 1, persistent session) and sends each to the queue with its topic added,
 * acknowledging them to the broker once SQS has them. A payload that is not a JSON object goes as
 * it came, for the ingest to reject.
 */

export type IotRuleBridge = { mqtt: MqttClient; close(): Promise<void> };

export async function startIotRuleBridge(opts: { mqttUrl: string; sqs: SQSClient; queueUrl: string; clientId?: string; flushMs?: number }): Promise<IotRuleBridge> {
  const client = mqtt.connect(opts.mqttUrl, { clientId: opts.clientId ?? 'fleet-iot-rule-bridge', clean: false, reconnectPeriod: 1000, resubscribe: true });
  const gate = installAckGate(client);
  let bodies: string[] = [];
  let sending = Promise.resolve();
  client.handleMessage = (packet, done) => {
    bodies.push(ruleBody(packet.topic, packet.payload as Buffer));
    done();
  };
  const flush = () => {
    if (bodies.length === 0) return;
    const batch = bodies;
    bodies = [];
    const release = gate.take();
    sending = sending.then(() => sendAll(opts, batch)).then(release);
  };
  const timer = setInterval(flush, opts.flushMs ?? 50);
  client.on('connect', () => client.subscribe(STATUS_TOPIC_FILTER, { qos: 1 }));
  await new Promise<void>((resolve, reject) => {
    client.once('connect', () => resolve());
    client.once('error', reject);
  });
  return {
    mqtt: client,
    close: async () => {
      clearInterval(timer);
      flush();
      await sending;
      await client.endAsync();
    },
  };
}

/** The rule's output: the heartbeat with `topic` added. */
function ruleBody(topic: string, payload: Buffer): string {
  const text = payload.toString('utf8');
  try {
    const json = JSON.parse(text);
    if (json !== null && typeof json === 'object' && !Array.isArray(json)) return JSON.stringify({ ...json, topic });
  } catch {
    // not JSON: sent as it came
  }
  return text;
}

/** Sends every body, 10 a call, each call again until SQS has it (a repeat is harmless downstream). */
async function sendAll(opts: { sqs: SQSClient; queueUrl: string }, bodies: string[]): Promise<void> {
  const calls: Promise<void>[] = [];
  for (let i = 0; i < bodies.length; i += 10) {
    const entries = bodies.slice(i, i + 10).map((MessageBody, k) => ({ Id: String(k), MessageBody }));
    calls.push(
      (async () => {
        for (let attempt = 0; ; attempt++) {
          try {
            const result = await opts.sqs.send(new SendMessageBatchCommand({ QueueUrl: opts.queueUrl, Entries: entries }));
            if (!result.Failed?.length) return;
          } catch {
            // the queue is unreachable: try again
          }
          await new Promise((r) => setTimeout(r, Math.min(100 * 2 ** attempt, 5000)));
        }
      })(),
    );
  }
  await Promise.all(calls);
}
