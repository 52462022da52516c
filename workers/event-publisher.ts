import pino from 'pino';
import { loadConfig } from '../config';
import { startEventPublisher } from '../outbox/publisher';

/**
 * The outbox publisher on its own: domain events from PostgreSQL to RabbitMQ (outbox/publisher.ts).
 * `npm start` runs the same publisher in its process when AMQP_URL is set. Any number may run.
 */
async function main(): Promise<void> {
  const config = loadConfig();
  if (!config.DATABASE_URL) throw new Error('DATABASE_URL is required to run the event publisher on its own');
  if (!config.AMQP_URL) throw new Error('AMQP_URL is required: the RabbitMQ to publish to (scripts/rabbitmq.sh starts a local one)');
  const logger = pino({ level: config.LOG_LEVEL });
  const publisher = startEventPublisher({ databaseUrl: config.DATABASE_URL, amqpUrl: config.AMQP_URL, env: config.EVENTS_ENV, logger });
  logger.info({ exchange: publisher.exchange }, 'event publisher started');
  const shutdown = () => void publisher.stop().then(() => process.exit(0));
  process.once('SIGINT', shutdown);
  process.once('SIGTERM', shutdown);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
