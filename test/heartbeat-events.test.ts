import { randomUUID } from 'node:crypto';
import { connect, type ChannelModel } from 'amqplib';
import type { MqttClient } from 'mqtt';
import { heartbeatEventId } from '../domain/heartbeat-received';
import { heartbeatExchangeName } from '../ingest/heartbeat-events';
import { eventually, startFleet, uniqueSerial, type TestFleet } from './support/fleet';
import { connectRobot, heartbeat, publish } from './support/robot';

/**
 * Device.HeartbeatReceived on a real RabbitMQ (AMQP_URL, as .ci/run sets it; skipped without):
 * one message per heartbeat stored as its robot's newest, with the Device as GET /v1/devices shows
 * it and the fields that changed; none for a repeat or an older heartbeat; the id follows the
 * heartbeat, not the delivery.
 */

const AMQP_URL = process.env.AMQP_URL;
const withRabbit = AMQP_URL ? describe : describe.skip;
if (!AMQP_URL) console.warn('test/heartbeat-events.test.ts: AMQP_URL is unset, so these tests are skipped (export AMQP_URL=$(scripts/rabbitmq.sh)).');

type Message = { messageId: string; routingKey: string; body: { id: string; type: string; serial: string; occurredAt: string; data: { device: any; updatedFields: string[] } } };

withRabbit('Device.HeartbeatReceived', () => {
  const env = `hb${randomUUID().slice(0, 8)}`;
  let fleet: TestFleet;
  let robot: MqttClient;
  let amqp: ChannelModel;
  const messages: Message[] = [];

  beforeAll(async () => {
    amqp = await connect(AMQP_URL!);
    const channel = await amqp.createChannel();
    const exchange = heartbeatExchangeName(env);
    await channel.assertExchange(exchange, 'topic', { durable: true });
    const { queue } = await channel.assertQueue('', { exclusive: true });
    await channel.bindQueue(queue, exchange, 'Device.HeartbeatReceived');
    await channel.consume(queue, (m) => {
      if (m) messages.push({ messageId: m.properties.messageId, routingKey: m.fields.routingKey, body: JSON.parse(m.content.toString()) });
    }, { noAck: true });
    fleet = await startFleet({ AMQP_URL: AMQP_URL!, EVENTS_ENV: env });
    robot = await connectRobot();
  });

  afterAll(async () => {
    await robot?.endAsync();
    await fleet?.stop();
    await amqp?.close();
  });

  const of = (serial: string) => messages.filter((m) => m.body.serial === serial);

  test('one message per heartbeat stored as the newest, with the Device and the fields that changed', async () => {
    const serial = uniqueSerial('HB');
    const t = Date.now();
    await publish(robot, `robot/${serial}/status`, heartbeat(serial, { timestamp: t, gps: { lat: 1.5, lng: 2.5 } }));
    const [first] = await eventually(async () => {
      expect(of(serial)).toHaveLength(1);
      return of(serial);
    });
    expect(first).toMatchObject({ messageId: heartbeatEventId(serial, t), routingKey: 'Device.HeartbeatReceived', body: { id: heartbeatEventId(serial, t), type: 'Device.HeartbeatReceived', serial, occurredAt: new Date(t).toISOString() } });
    expect(first.body.data.updatedFields).toEqual(['location', 'batteries', 'connectivity', 'lidState', 'componentStatuses']);
    const shown = (await fleet.api(`/v1/devices/${serial}`)).body;
    for (const field of ['name', 'location', 'batteries', 'lidState', 'componentStatuses', 'createdAt']) expect([field, first.body.data.device[field]]).toEqual([field, shown[field]]);

    // Moved, nothing else: only the location changed.
    await publish(robot, `robot/${serial}/status`, heartbeat(serial, { timestamp: t + 1000, gps: { lat: 1.6, lng: 2.5 } }));
    const second = await eventually(async () => {
      expect(of(serial)).toHaveLength(2);
      return of(serial)[1];
    });
    expect(second.body.data.updatedFields).toEqual(['location']);
    expect(second.body.data.device.location.latitude).toBe(1.6);

    // A repeat and an older heartbeat are stored (last seen), but are not the newest: no message.
    await publish(robot, `robot/${serial}/status`, heartbeat(serial, { timestamp: t + 1000, gps: { lat: 1.6, lng: 2.5 } }));
    await publish(robot, `robot/${serial}/status`, heartbeat(serial, { timestamp: t + 500, gps: { lat: 9, lng: 9 } }));
    const marker = uniqueSerial('HB');
    await publish(robot, `robot/${marker}/status`, heartbeat(marker));
    await eventually(async () => expect(of(marker)).toHaveLength(1));
    expect(of(serial)).toHaveLength(2);
  });
});
