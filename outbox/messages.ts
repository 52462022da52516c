import type { Options } from 'amqplib';
import type { DomainEvent } from '../domain/events';

/**
 * How a domain event looks on RabbitMQ. Seed 002 names exchanges `<domain>/<what>`, prefixed with
 * the environment (`staging.deliveries/delivery-event`), all of type topic. Ours is one exchange
 * for every device-layer event, `<env>.devices/device-event`, and the routing key is the event
 * type: a consumer binds `Device.*`, `LidCycle.#`, `Rollout.Failed` or `#`.
 */

export const DEVICE_EVENTS_EXCHANGE = 'devices/device-event';
export const EXCHANGE_TYPE = 'topic';

/** Seed 002's `prefixWithEnv`. */
export const exchangeName = (env: string) => `${env}.${DEVICE_EVENTS_EXCHANGE}`;

export type OutboxEvent = DomainEvent & { seq: bigint };

export type AmqpMessage = { routingKey: string; content: Buffer; options: Options.Publish };

/**
 * The body is the event as the API serves it. `messageId` is the event id, the same on every
 * (re)publish, so consumers drop duplicates by it; `seq` in the headers gives the recorded order.
 */
export function amqpMessage(event: OutboxEvent): AmqpMessage {
  const body: DomainEvent = { id: event.id, type: event.type, serial: event.serial, occurredAt: event.occurredAt, data: event.data };
  const headers: Record<string, string> = { seq: String(event.seq) };
  if (event.serial !== null) headers.serial = event.serial;
  return {
    routingKey: event.type,
    content: Buffer.from(JSON.stringify(body)),
    options: {
      messageId: event.id,
      type: event.type,
      persistent: true,
      contentType: 'application/json',
      timestamp: Math.floor(Date.parse(event.occurredAt) / 1000),
      appId: 'fleet-backend',
      headers,
    },
  };
}
