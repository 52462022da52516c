import { hostname } from 'node:os';
import { connect, type ChannelModel, type ConfirmChannel } from 'amqplib';
import type { Logger } from 'pino';
import type { HeartbeatReceived } from '../domain/heartbeat-received';
import { EXCHANGE_TYPE } from '../outbox/messages';

/**
 * Publishes Device.HeartbeatReceived on `<env>.devices/heartbeat-received` (routing key the event
 * type, message id the event id), persistent, on a confirm channel. `publish` resolves once
 * RabbitMQ confirmed every message of the batch; the ingest calls it before its batch commits and
 * before the robots' messages are acknowledged, so a crash or an outage republishes, never loses.
 * A failed publish drops the connection; the next one connects again.
 */

export const HEARTBEAT_RECEIVED_EXCHANGE = 'devices/heartbeat-received';
export const heartbeatExchangeName = (env: string) => `${env}.${HEARTBEAT_RECEIVED_EXCHANGE}`;

export type HeartbeatEventPublisher = {
  readonly exchange: string;
  publish(events: HeartbeatReceived[]): Promise<void>;
  close(): Promise<void>;
};

export function heartbeatEventPublisher(opts: { amqpUrl: string; env: string; logger: Logger; confirmTimeoutMs?: number }): HeartbeatEventPublisher {
  const exchange = heartbeatExchangeName(opts.env);
  type Session = Promise<{ connection: ChannelModel; channel: ConfirmChannel }>;
  let session: Session | null = null;
  const open = () => {
    if (session) return session;
    const mine: Session = (async () => {
      const connection = await connect(opts.amqpUrl, { clientProperties: { connection_name: `fleet-ingest heartbeat events ${hostname()}:${process.pid}` } });
      // Only this session's own end forgets it: a late close of an old one must not orphan a newer.
      const drop = () => {
        if (session === mine) session = null;
      };
      connection.on('error', drop);
      connection.on('close', drop);
      const channel = await connection.createConfirmChannel();
      channel.on('error', drop);
      channel.on('close', drop);
      await channel.assertExchange(exchange, EXCHANGE_TYPE, { durable: true });
      return { connection, channel };
    })().catch((error: unknown) => {
      if (session === mine) session = null;
      throw error;
    });
    session = mine;
    return mine;
  };
  return {
    exchange,
    async publish(events) {
      if (events.length === 0) return;
      const { connection, channel } = await open();
      try {
        for (const event of events) {
          channel.publish(exchange, event.type, Buffer.from(JSON.stringify(event)), {
            messageId: event.id,
            type: event.type,
            persistent: true,
            contentType: 'application/json',
            timestamp: Math.floor(Date.parse(event.occurredAt) / 1000),
            appId: 'fleet-backend',
            headers: { serial: event.serial },
          });
        }
        await withTimeout(channel.waitForConfirms(), opts.confirmTimeoutMs ?? 15_000);
      } catch (error) {
        opts.logger.warn({ err: (error as Error).message }, 'heartbeat events not confirmed by RabbitMQ; the batch is retried');
        const failed = session;
        if ((await failed?.catch(() => null))?.connection === connection) session = null;
        await connection.close().catch(() => undefined);
        throw error;
      }
    },
    async close() {
      const current = await session?.catch(() => null);
      session = null;
      await current?.connection.close().catch(() => undefined);
    },
  };
}

async function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`RabbitMQ did not confirm within ${ms} ms`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}
