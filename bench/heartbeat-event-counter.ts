import { connect } from 'amqplib';
import { EXCHANGE_TYPE } from '../outbox/messages';

/**
 * The benchmark's consumer of Device.HeartbeatReceived (with --amqp), in a process of its own so
 * that 2,000 messages a second never hold up the benchmark's own timings: a queue of its own bound
 * to `<env>.devices/heartbeat-received`, messages taken without acknowledgement, counted with their
 * distinct ids (a heartbeat delivered twice keeps its event id). Sends `{ at, received, distinct }`
 * every `everyMs`, and a last one on "stop".
 */

export type EventCounterStart = { amqpUrl: string; exchange: string; everyMs: number };
export type EventCounterMessage = { type: 'ready' } | { type: 'count'; at: number; received: number; distinct: number };

const send = (message: EventCounterMessage) => process.send!(message);

// The benchmark ended without stopping it (it failed): nothing to report to.
process.once('disconnect', () => process.exit(0));

process.once('message', (start: EventCounterStart) => {
  void (async () => {
    const connection = await connect(start.amqpUrl);
    const channel = await connection.createChannel();
    // As the ingest declares it, so that binding before its first publish works.
    await channel.assertExchange(start.exchange, EXCHANGE_TYPE, { durable: true });
    const { queue } = await channel.assertQueue('', { exclusive: true, autoDelete: true, durable: false });
    await channel.bindQueue(queue, start.exchange, '#');
    let received = 0;
    const ids = new Set<string>();
    await channel.consume(
      queue,
      (message) => {
        if (!message) return;
        received += 1;
        ids.add(String(message.properties.messageId));
      },
      { noAck: true },
    );
    const count = () => send({ type: 'count', at: Date.now(), received, distinct: ids.size });
    const timer = setInterval(count, start.everyMs);
    send({ type: 'ready' });
    process.on('message', (message) => {
      if (message !== 'stop') return;
      clearInterval(timer);
      count();
      void connection.close().finally(() => process.disconnect());
    });
  })().catch((error: unknown) => {
    console.error(`heartbeat event counter: ${(error as Error).message}`);
    process.exit(1);
  });
});
