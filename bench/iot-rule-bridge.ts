import { loadConfig } from '../config';
import { startIotRuleBridge } from '../infra/iot-rule-local';
import { createSqsClient } from '../infra/sqs';

/**
 * The stand-in for the AWS IoT Rule (infra/iot-rule-local.ts) as a process of its own, so that the
 * benchmark measures its CPU apart from the ingest's (in production that work is AWS's):
 * `node --import tsx bench/iot-rule-bridge.ts` with MQTT_URL, SQS_HEARTBEAT_QUEUE_URL and SQS_ENDPOINT.
 */
async function main(): Promise<void> {
  const config = loadConfig();
  if (!config.MQTT_URL || !config.SQS_HEARTBEAT_QUEUE_URL) throw new Error('MQTT_URL and SQS_HEARTBEAT_QUEUE_URL are required');
  const sqs = createSqsClient({ region: config.AWS_REGION, endpoint: config.SQS_ENDPOINT });
  const bridge = await startIotRuleBridge({ mqttUrl: config.MQTT_URL, sqs, queueUrl: config.SQS_HEARTBEAT_QUEUE_URL });
  console.log(`IoT Rule bridge on ${config.MQTT_URL} -> ${config.SQS_HEARTBEAT_QUEUE_URL}`);
  const shutdown = async () => {
    await bridge.close();
    sqs.destroy();
    process.exit(0);
  };
  process.once('SIGINT', () => void shutdown());
  process.once('SIGTERM', () => void shutdown());
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
