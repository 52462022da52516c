import { hostname } from 'node:os';
import { connect, type ChannelModel, type ConfirmChannel, type ConsumeMessage } from 'amqplib';
import type { Logger } from 'pino';
import { fieldPath, pathToNul } from '../domain/field-path';
import { operationsEventBatchSchema, operationsEventSchema, type OperationsEvent } from '../domain/operations-events';
import { EXCHANGE_TYPE } from '../outbox/messages';
import { OperationsEventConflict } from '../store/fleet';
import { applyOperationsFacts, type OperationsFactsDeps } from './operations-facts';

/**
 * Operations and Deliveries facts from RabbitMQ (seed 002 naming): the durable queue
 * `<env>.devices/operations-facts`, bound with `#` to the four topic exchanges they publish on.
 * Each message is what POST /v1/operations-events takes (one fact, or `{ events: [...] }`),
 * applied through the same code (ingest/operations-facts.ts) and acknowledged only once it is
 * applied and the workflows are signalled; a failure to do so is retried, holding the message.
 * A message that can never be applied (not JSON, not facts, an id received before with other
 * content) goes to `<env>.devices/operations-facts.dead-letter` with its reason in the `reason`
 * header, and is acknowledged. A redelivered message changes nothing: facts are kept by id. Any
 * number of consumers may run; the queue splits the messages among them.
 */

export const OPERATIONS_FACTS_QUEUE = 'devices/operations-facts';
export const factsQueueName = (env: string) => `${env}.${OPERATIONS_FACTS_QUEUE}`;
export const deadLetterQueueName = (env: string) => `${factsQueueName(env)}.dead-letter`;
/** Where Operations and Deliveries publish their facts. */
export const factsExchanges = (env: string) => ['operations/trip-event', 'operations/task-event', 'operations/deployment-event', 'deliveries/provider-updated'].map((e) => `${env}.${e}`);
/** The header of a dead-lettered message that says why it was not applied. */
export const REASON_HEADER = 'reason';

// As POST /v1/operations-events takes at most (express.json's 100kb).
const MAX_MESSAGE_BYTES = 100 * 1024;

export type OperationsFactsConsumerOptions = {
  amqpUrl: string;
  env: string;
  logger: Logger;
  facts: OperationsFactsDeps;
  /** Messages taken at once (each is one transaction and its signals). */
  prefetch?: number;
};

export type OperationsFactsConsumer = {
  /** Resolves once the queue is bound and consumed (the first time). */
  readonly ready: Promise<void>;
  /** Messages applied (acknowledged) and dead-lettered by this consumer. */
  readonly counts: { applied: number; deadLettered: number };
  close(): Promise<void>;
};

type Session = { connection: ChannelModel; channel: ConfirmChannel; closed: boolean };

export function startOperationsFactsConsumer(opts: OperationsFactsConsumerOptions): OperationsFactsConsumer {
  const log = opts.logger.child({ component: 'operations-facts', queue: factsQueueName(opts.env) });
  const counts = { applied: 0, deadLettered: 0 };
  const inFlight = new Set<Promise<void>>();
  let session: Session | null = null;
  let stopping = false;
  let stop: () => void = () => undefined;
  const stopped = new Promise<void>((resolve) => (stop = resolve));
  const pause = (ms: number) => Promise.race([stopped, new Promise<void>((resolve) => setTimeout(resolve, ms).unref())]);
  let wake: (() => void) | null = null;
  let markReady: () => void = () => undefined;
  const ready = new Promise<void>((resolve) => (markReady = resolve));

  const open = async (): Promise<Session> => {
    const connection = await connect(opts.amqpUrl, { clientProperties: { connection_name: `fleet-ingest operations facts ${hostname()}:${process.pid}` } });
    const s = { connection, closed: false } as Session;
    const lost = (err?: Error) => {
      if (s.closed) return;
      s.closed = true;
      if (!stopping) log.warn({ err: err?.message }, 'operations facts: RabbitMQ connection lost; reconnecting');
      wake?.();
    };
    connection.on('error', lost);
    connection.on('close', lost);
    try {
      s.channel = await connection.createConfirmChannel();
      s.channel.on('error', lost);
      s.channel.on('close', lost);
      await s.channel.prefetch(opts.prefetch ?? 20);
      const queue = factsQueueName(opts.env);
      await s.channel.assertQueue(queue, { durable: true });
      await s.channel.assertQueue(deadLetterQueueName(opts.env), { durable: true });
      for (const exchange of factsExchanges(opts.env)) {
        await s.channel.assertExchange(exchange, EXCHANGE_TYPE, { durable: true });
        await s.channel.bindQueue(queue, exchange, '#');
      }
      await s.channel.consume(queue, (message) => {
        if (!message) return lost(new Error('consumer cancelled by RabbitMQ'));
        const handled = handle(s, message).catch((error: unknown) => log.error({ err: (error as Error).message }, 'operations facts: handling a message failed'));
        inFlight.add(handled);
        void handled.finally(() => inFlight.delete(handled));
      });
    } catch (error) {
      s.closed = true;
      await connection.close().catch(() => undefined);
      throw error;
    }
    return s;
  };

  const handle = async (s: Session, message: ConsumeMessage): Promise<void> => {
    const parsed = parseFactsMessage(message.content);
    if (!parsed.ok) return deadLetter(s, message, parsed.reason);
    for (let delayMs = 500; ; delayMs = Math.min(delayMs * 2, 30_000)) {
      // Unacknowledged, the message goes back to the queue when the channel closes.
      if (s.closed) return;
      if (stopping) return s.channel.nack(message, false, true);
      try {
        await applyOperationsFacts(opts.facts, parsed.events);
      } catch (error) {
        if (error instanceof OperationsEventConflict) return deadLetter(s, message, error.message);
        log.warn({ err: (error as Error).message, retryInMs: delayMs }, 'operations facts: applying failed; retrying');
        await pause(delayMs);
        continue;
      }
      if (s.closed) return; // applied, and redelivered to whoever consumes next: a repeat changes nothing
      s.channel.ack(message);
      counts.applied++;
      return;
    }
  };

  const deadLetter = async (s: Session, message: ConsumeMessage, reason: string): Promise<void> => {
    log.warn({ reason, exchange: message.fields.exchange, routingKey: message.fields.routingKey }, 'operations facts: dead-lettering a message');
    const { properties, fields } = message;
    s.channel.publish('', deadLetterQueueName(opts.env), message.content, {
      persistent: true,
      contentType: properties.contentType,
      messageId: properties.messageId,
      type: properties.type,
      timestamp: properties.timestamp,
      appId: properties.appId,
      headers: { ...properties.headers, [REASON_HEADER]: reason.slice(0, 2000), 'original-exchange': fields.exchange, 'original-routing-key': fields.routingKey },
    });
    // Acknowledged once RabbitMQ holds the dead letter: a failure leaves the message to be redelivered.
    await s.channel.waitForConfirms();
    s.channel.ack(message);
    counts.deadLettered++;
  };

  const run = async (): Promise<void> => {
    for (let delayMs = 0; !stopping; ) {
      try {
        session = await open();
        delayMs = 0;
        markReady();
        await new Promise<void>((resolve) => {
          wake = resolve;
          if (session?.closed || stopping) resolve();
        });
      } catch (error) {
        log.warn({ err: (error as Error).message }, 'operations facts: cannot consume from RabbitMQ; retrying');
      }
      const previous = session;
      session = null;
      if (previous && !stopping) await previous.connection.close().catch(() => undefined);
      if (stopping) return;
      delayMs = Math.min(Math.max(delayMs * 2, 500), 30_000);
      await pause(delayMs);
    }
  };

  const running = run();
  return {
    ready,
    counts,
    async close() {
      stopping = true;
      const current = session;
      stop();
      wake?.();
      await running;
      // Let the messages in hand finish (or go back to the queue), then disconnect.
      await Promise.all([...inFlight]);
      await current?.connection.close().catch(() => undefined);
    },
  };
}

/** A message as POST /v1/operations-events takes its body; the reason names the field, as its 400 does. */
export function parseFactsMessage(content: Buffer): { ok: true; events: OperationsEvent[] } | { ok: false; reason: string } {
  if (content.length > MAX_MESSAGE_BYTES) return { ok: false, reason: `body: ${content.length} bytes is over the ${MAX_MESSAGE_BYTES}-byte limit` };
  let body: unknown;
  try {
    body = JSON.parse(content.toString('utf8'));
  } catch {
    return { ok: false, reason: 'body: not valid JSON' };
  }
  const batch = body !== null && typeof body === 'object' && 'events' in body;
  const parsed = batch ? operationsEventBatchSchema.safeParse(body) : operationsEventSchema.safeParse(body);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return { ok: false, reason: `${fieldPath(issue.path)}: ${issue.message}` };
  }
  // PostgreSQL text cannot hold NUL.
  const nul = pathToNul(parsed.data);
  if (nul) return { ok: false, reason: `${fieldPath(nul)}: must not contain NUL (\\u0000) characters` };
  return { ok: true, events: 'events' in parsed.data ? parsed.data.events : [parsed.data] };
}

