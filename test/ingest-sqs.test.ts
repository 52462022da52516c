import { GetQueueAttributesCommand, SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { MqttClient } from 'mqtt';
import { createSqsClient } from '../infra/sqs';
import { startLocalSqs, type LocalSqs } from '../infra/sqs-local';
import { startIotRuleBridge, type IotRuleBridge } from '../infra/iot-rule-local';
import { eventually, required, startFleet, uniqueSerial, type TestFleet } from './support/fleet';
import { connectRobot, heartbeat, publish } from './support/robot';
import { freePort } from '../infra/ports';

/**
 * INGEST_SOURCE=sqs (seed 001 Phase 1): heartbeats from the queue an AWS IoT Rule fills, here a
 * local SQS-compatible server (ElasticMQ) and a stand-in for the rule. The same heartbeats as over
 * MQTT; bad messages are kept as rejected and deleted, and never stop a receiver.
 */

let sqsServer: LocalSqs;
let sqs: SQSClient;
let bridge: IotRuleBridge;
let fleet: TestFleet;
let robot: MqttClient;

beforeAll(async () => {
  sqsServer = await startLocalSqs({ port: await freePort() });
  sqs = createSqsClient({ region: 'us-east-1', endpoint: sqsServer.endpoint });
  fleet = await startFleet({ INGEST_SOURCE: 'sqs', SQS_HEARTBEAT_QUEUE_URL: sqsServer.queueUrl, SQS_ENDPOINT: sqsServer.endpoint, SQS_RECEIVERS: '2' });
  bridge = await startIotRuleBridge({ mqttUrl: required('MQTT_URL'), sqs, queueUrl: sqsServer.queueUrl, clientId: `bridge-${fleet.taskQueue}` });
  robot = await connectRobot();
}, 120_000);

afterAll(async () => {
  await robot?.endAsync();
  await bridge?.close();
  await fleet?.stop();
  sqs?.destroy();
  await sqsServer?.stop();
});

const send = (body: string) => sqs.send(new SendMessageCommand({ QueueUrl: sqsServer.queueUrl, MessageBody: body }));
const ruleMessage = (serial: string, patch: object = {}) => JSON.stringify({ ...heartbeat(serial), ...patch, topic: `robot/${serial}/status` });

async function queueIsEmpty(): Promise<void> {
  const { Attributes } = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: sqsServer.queueUrl, AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'] }));
  expect([Attributes?.ApproximateNumberOfMessages, Attributes?.ApproximateNumberOfMessagesNotVisible]).toEqual(['0', '0']);
}

test('a heartbeat the IoT Rule puts on the queue reaches the projection and the robot workflow, and is deleted', async () => {
  const serial = uniqueSerial('SQ');
  await send(ruleMessage(serial, { gps: { lat: 12.5, lng: 3 } }));
  await eventually(async () => {
    const res = await fleet.api(`/v1/devices/${serial}`);
    expect(res.body.location?.latitude).toBe(12.5);
    expect(res.body.connectivity.online).toBe(true);
  });
  await eventually(queueIsEmpty);
});

test('a robot publishing over MQTT travels the production path: broker, IoT Rule, SQS, ingest', async () => {
  const serial = uniqueSerial('SQ');
  await publish(robot, `robot/${serial}/status`, heartbeat(serial, { components: { GPS: 'CRITICAL_FAULT' } }));
  await eventually(async () => {
    const events = await fleet.api(`/v1/events?serial=${serial}&type=Device.HealthDegraded`);
    expect(events.body.events).toHaveLength(1);
  });
});

test('bad messages (not JSON, no topic, a topic naming another robot, oversized) are kept as rejected and deleted; the receivers go on', async () => {
  const serial = uniqueSerial('SQ');
  const other = uniqueSerial('SQ');
  const oversized = JSON.stringify({ ...heartbeat(serial), padding: 'x'.repeat(70 * 1024), topic: `robot/${serial}/status` });
  const before = (await fleet.prisma.rejectedMessage.aggregate({ _max: { id: true } }))._max.id ?? 0n;
  await send('{not json');
  await send(JSON.stringify(heartbeat(serial)));
  await send(JSON.stringify({ ...heartbeat(other), topic: `robot/${serial}/status` }));
  await send(oversized);
  const after = uniqueSerial('SQ');
  await send(ruleMessage(after));
  await eventually(async () => expect((await fleet.api(`/v1/devices/${after}`)).status).toBe(200));
  const rows = await eventually(async () => {
    const found = await fleet.prisma.rejectedMessage.findMany({ where: { id: { gt: before } } });
    expect(found).toHaveLength(4);
    return found;
  });
  expect(rows.map((r) => r.reason)).toEqual(
    expect.arrayContaining([
      'payload: not valid JSON',
      'topic: missing; the IoT Rule adds topic() AS topic',
      `serial: "${other}" does not match topic serial "${serial}"`,
      expect.stringMatching(/^payload: \d+ bytes is over the 65536-byte limit$/),
    ]),
  );
  expect((await fleet.api(`/v1/devices/${other}`)).status).toBe(404);
  await eventually(queueIsEmpty);
});
