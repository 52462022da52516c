import { randomUUID } from 'node:crypto';
import { connect, type ChannelModel, type ConfirmChannel } from 'amqplib';
import type { MqttClient } from 'mqtt';
import { deadLetterQueueName, factsExchanges, factsQueueName, REASON_HEADER } from '../ingest/operations-facts-consumer';
import { eventually, startFleet, uniqueSerial, type TestFleet } from './support/fleet';
import { connectRobot, heartbeat, publish } from './support/robot';

/**
 * Operations and Deliveries facts from a real RabbitMQ (AMQP_URL, as .ci/run sets it; skipped
 * without): the ingest worker consumes `<env>.devices/operations-facts`, bound to the four
 * exchanges the facts are published on, and applies each message as POST /v1/operations-events
 * would; a message that cannot be applied is dead-lettered with its reason and the consumer goes on.
 */

const AMQP_URL = process.env.AMQP_URL;
const withRabbit = AMQP_URL ? describe : describe.skip;
if (!AMQP_URL) console.warn('test/operations-facts-rabbitmq.test.ts: AMQP_URL is unset, so these tests are skipped (export AMQP_URL=$(scripts/rabbitmq.sh)).');

withRabbit('facts from RabbitMQ', () => {
  const env = `of${randomUUID().slice(0, 8)}`;
  const [tripEvents, taskEvents, deploymentEvents, providerUpdates] = factsExchanges(env);
  let fleet: TestFleet;
  let robot: MqttClient;
  let amqp: ChannelModel;
  let channel: ConfirmChannel;

  beforeAll(async () => {
    amqp = await connect(AMQP_URL!);
    channel = await amqp.createConfirmChannel();
    fleet = await startFleet({ AMQP_URL: AMQP_URL!, EVENTS_ENV: env, OFFLINE_AFTER_SECONDS: '300' });
    await fleet.ingest.operationsFacts!.ready;
    robot = await connectRobot();
  });

  afterAll(async () => {
    await robot?.endAsync();
    await fleet?.stop();
    if (channel) {
      for (const queue of [factsQueueName(env), deadLetterQueueName(env)]) await channel.deleteQueue(queue);
      for (const exchange of factsExchanges(env)) await channel.deleteExchange(exchange);
    }
    await amqp?.close();
  });

  let clock = Date.parse('2026-03-01T08:00:00.000Z');
  const fact = (serial: string, type: string, data: object) => ({ id: `ev-${randomUUID()}`, type, serial, occurredAt: new Date((clock += 1000)).toISOString(), data });
  const send = async (exchange: string, body: object | string, routingKey = 'fact') => {
    channel.publish(exchange, routingKey, Buffer.from(typeof body === 'string' ? body : JSON.stringify(body)), { persistent: true, contentType: 'application/json' });
    await channel.waitForConfirms();
  };
  const fleetDevice = async (serial: string) => (await fleet.api(`/v1/fleet-devices/${serial}`)).body;
  const applied = () => fleet.ingest.operationsFacts!.counts.applied;

  async function onlineRobot(): Promise<string> {
    const serial = uniqueSerial('OF');
    await publish(robot, `robot/${serial}/status`, heartbeat(serial));
    await eventually(async () => expect((await fleetDevice(serial)).status).toBe('UNDEPLOYED'));
    return serial;
  }

  test('facts published to each of the four exchanges show in the fleet view', async () => {
    const serial = await onlineRobot();
    await send(deploymentEvents, fact(serial, 'Deployment.Created', { deploymentId: `dep-${serial}`, locationId: 'LOC-7' }), 'Deployment.Created');
    await eventually(async () => expect(await fleetDevice(serial)).toMatchObject({ status: 'DEPLOYED', deployment: { deploymentId: `dep-${serial}`, locationId: 'LOC-7' } }));

    // The batch form, as the route takes it.
    const task = `task-${serial}`;
    await send(taskEvents, { events: [fact(serial, 'FoTask.Created', { taskId: task, taskType: 'INSPECT', status: 'PENDING' })] });
    await eventually(async () => expect(await fleetDevice(serial)).toMatchObject({ status: 'NEEDS_MAINTENANCE', foTasks: [{ taskId: task }] }));
    await send(taskEvents, fact(serial, 'FoTask.StatusChanged', { taskId: task, status: 'COMPLETED' }));

    await send(tripEvents, fact(serial, 'Trip.Created', { tripId: `trip-${serial}`, tripType: 'DELIVERY' }), 'Trip.Created');
    await eventually(async () => expect(await fleetDevice(serial)).toMatchObject({ status: 'ON_TRIP', foTasks: [], activeTrip: { tripId: `trip-${serial}` } }));

    await send(providerUpdates, fact(serial, 'ProviderMapping.Created', { provider: 'uber', providerVehicleId: 'veh-1', deliveryId: `del-${serial}` }));
    await eventually(async () => expect((await fleetDevice(serial)).providerMappings).toEqual([{ provider: 'uber', providerVehicleId: 'veh-1', deliveryId: `del-${serial}`, createdAt: expect.any(String) }]));
  });

  test('a message that cannot be applied goes to the dead-letter queue with its reason, and the consumer goes on', async () => {
    const serial = await onlineRobot();
    const trip = fact(serial, 'Trip.Created', { tripId: `trip-${serial}`, tripType: 'DELIVERY' });
    await send(tripEvents, trip);
    await eventually(async () => expect((await fleetDevice(serial)).status).toBe('ON_TRIP'));

    const poison: [string, object | string, RegExp][] = [
      [tripEvents, '{"id": "half', /^body: not valid JSON$/],
      [taskEvents, fact(serial, 'FoTask.StatusChanged', { taskId: 'k', status: 'DONE' }), /^data\.status: /],
      [deploymentEvents, fact(serial, 'Trip.Teleported', {}), /^type: /],
      [providerUpdates, { events: [] }, /^events: /],
      // The same id with other content: a conflict, as the route's 409.
      [tripEvents, { ...trip, data: { tripId: `trip-${serial}`, tripType: 'RETURN' } }, /already received with different content/],
    ];
    for (const [exchange, body] of poison) await send(exchange, body, 'poison');
    await send(tripEvents, fact(serial, 'Trip.Completed', { tripId: `trip-${serial}`, outcome: 'DELIVERED' }));
    await eventually(async () => expect((await fleetDevice(serial)).status).toBe('UNDEPLOYED'));

    const dead = await eventually(async () => {
      const { messageCount } = await channel.checkQueue(deadLetterQueueName(env));
      expect(messageCount).toBe(poison.length);
      const got = [];
      for (let i = 0; i < poison.length; i++) {
        const message = await channel.get(deadLetterQueueName(env), { noAck: true });
        if (message) got.push(message);
      }
      return got;
    });
    const byContent = new Map(dead.map((m) => [m.content.toString(), m.properties.headers ?? {}]));
    for (const [exchange, body, reason] of poison) {
      const headers = byContent.get(typeof body === 'string' ? body : JSON.stringify(body));
      expect(headers).toMatchObject({ [REASON_HEADER]: expect.stringMatching(reason), 'original-exchange': exchange, 'original-routing-key': 'poison' });
    }
  });

  test('a fact delivered again changes nothing', async () => {
    const serial = await onlineRobot();
    const created = fact(serial, 'Trip.Created', { tripId: `trip-${serial}`, tripType: 'DELIVERY' });
    await send(tripEvents, created);
    await eventually(async () => expect((await fleetDevice(serial)).status).toBe('ON_TRIP'));
    await send(tripEvents, fact(serial, 'Trip.Completed', { tripId: `trip-${serial}`, outcome: 'DELIVERED' }));
    await eventually(async () => expect((await fleetDevice(serial)).status).toBe('UNDEPLOYED'));
    const version = (await fleet.prisma.fleetDevice.findUniqueOrThrow({ where: { serialNumber: serial } })).factsVersion;

    const before = applied();
    await send(tripEvents, created);
    await eventually(() => expect(applied()).toBe(before + 1));
    expect(await fleetDevice(serial)).toMatchObject({ status: 'UNDEPLOYED', activeTrip: null });
    expect((await fleet.prisma.fleetDevice.findUniqueOrThrow({ where: { serialNumber: serial } })).factsVersion).toBe(version);
    expect(await fleet.prisma.operationsEvent.findMany({ where: { id: created.id }, select: { outcome: true } })).toEqual([{ outcome: 'APPLIED' }]);
  });
});
