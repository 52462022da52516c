import { hostname } from 'node:os';
import { connect, type ChannelModel, type ConfirmChannel } from 'amqplib';
import type { Logger } from 'pino';
import { listenForEvents } from '../infra/event-feed';
import { pgSession, type PgSession } from '../infra/pg-session';
import { publishOutboxBatch } from '../store/events';
import { amqpMessage, EXCHANGE_TYPE, exchangeName, type OutboxEvent } from './messages';

/**
 * The outbox publisher: domain_events is the outbox, and event_outbox lists the events RabbitMQ has
 * not confirmed yet (a trigger adds every new event). In one transaction at a time
 * (store/events.ts publishOutboxBatch), the publisher claims the oldest listed events (FOR UPDATE
 * SKIP LOCKED), publishes them persistent on a confirm channel, and deletes from the list exactly
 * those RabbitMQ confirmed, in order, before committing.
 *
 * The guarantee is at least once: an event leaves the list only after RabbitMQ confirmed it, so a
 * broker or publisher failure loses nothing; a crash between the confirm and the commit publishes
 * it again, with the same message id (the event id), which consumers deduplicate on.
 * Several publishers may run: an advisory lock lets one transaction publish at a time, so the
 * exchange receives events in seq order; the others are standbys.
 */

export type EventPublisherOptions = {
  databaseUrl: string;
  amqpUrl: string;
  /** Exchange prefix (EVENTS_ENV): `<env>.devices/device-event`. */
  env: string;
  logger: Logger;
  batchSize?: number;
  /** Looks at the outbox this often even without a notification (standbys, lost notifications). */
  idlePollMs?: number;
  /** Unconfirmed this long, a batch counts as failed and the publisher reconnects. */
  confirmTimeoutMs?: number;
  maxRetryDelayMs?: number;
};

export type EventPublisher = {
  readonly exchange: string;
  /** Events this publisher had confirmed and removed from the outbox. */
  readonly published: number;
  /** Finishes the batch in flight, then disconnects. */
  stop(): Promise<void>;
};

/** One connection to each side; any error on either marks it broken and the loop starts over. */
type Session = { pg: PgSession; amqp: ChannelModel | null; channel: ConfirmChannel | null; broken: Error | null };

export function startEventPublisher(opts: EventPublisherOptions): EventPublisher {
  const publisher = new OutboxPublisher(opts);
  publisher.start();
  return publisher;
}

class OutboxPublisher implements EventPublisher {
  readonly exchange: string;
  published = 0;
  private readonly batchSize: number;
  private readonly log: Logger;
  private stopping = false;
  private running: Promise<void> = Promise.resolve();
  private signalled = false;
  private wake: (() => void) | null = null;
  private stopWaiting: (() => void) | null = null;

  constructor(private readonly opts: EventPublisherOptions) {
    this.exchange = exchangeName(opts.env);
    this.batchSize = opts.batchSize ?? 200;
    this.log = opts.logger.child({ component: 'event-publisher', exchange: this.exchange });
  }

  start(): void {
    this.running = this.loop();
  }

  // An arrow function, so `stops.push(['event publisher', publisher.stop])` works unbound.
  readonly stop = async (): Promise<void> => {
    this.stopping = true;
    this.signal();
    this.stopWaiting?.();
    await this.running;
  };

  private async loop(): Promise<void> {
    let delayMs = 0;
    while (!this.stopping) {
      let session: Session | null = null;
      try {
        session = await this.connect();
        this.log.info('publishing domain events to RabbitMQ');
        for (;;) {
          if (this.stopping) return;
          if (session.broken) throw session.broken;
          const claimed = await this.publishBatch(session);
          if (claimed > 0) delayMs = 0;
          if (claimed < this.batchSize) await this.idle();
        }
      } catch (error) {
        if (this.stopping) return;
        delayMs = Math.min(Math.max(delayMs * 2, 500), this.opts.maxRetryDelayMs ?? 15_000);
        this.log.warn({ err: (error as Error).message, retryInMs: delayMs }, 'publishing failed; the events stay in the outbox');
      } finally {
        if (session) await this.disconnect(session);
      }
      await this.backOff(delayMs);
    }
  }

  private async connect(): Promise<Session> {
    const pg = pgSession(this.opts.databaseUrl, 'fleet-event-publisher');
    const session: Session = { pg, amqp: null, channel: null, broken: null };
    const broken = (what: string) => (err?: Error) => {
      session.broken ??= err ?? new Error(`${what} closed`);
      this.signal();
    };
    pg.on('error', broken('PostgreSQL connection'));
    pg.on('end', broken('PostgreSQL connection'));
    pg.on('notification', () => this.signal());
    try {
      await pg.connect();
      await listenForEvents(pg);
      session.amqp = await connect(this.opts.amqpUrl, { clientProperties: { connection_name: `fleet-event-publisher ${hostname()}:${process.pid}` } });
      session.amqp.on('error', broken('RabbitMQ connection'));
      session.amqp.on('close', broken('RabbitMQ connection'));
      session.channel = await session.amqp.createConfirmChannel();
      session.channel.on('error', broken('RabbitMQ channel'));
      session.channel.on('close', broken('RabbitMQ channel'));
      await session.channel.assertExchange(this.exchange, EXCHANGE_TYPE, { durable: true });
      return session;
    } catch (error) {
      await this.disconnect(session);
      throw error;
    }
  }

  private async disconnect(session: Session): Promise<void> {
    session.broken ??= new Error('disconnected');
    await session.amqp?.close().catch(() => undefined);
    await session.pg.end().catch(() => undefined);
  }

  /** Claims, publishes and removes up to one batch; returns how many it claimed. */
  private async publishBatch(session: Session): Promise<number> {
    // Claiming nothing also means another publisher is at it: look again after the next notification or poll.
    const batch = await publishOutboxBatch(session.pg, this.batchSize, (events) => this.publish(session.channel!, events));
    this.published += batch.confirmed;
    if (batch.error) throw batch.error;
    return batch.claimed;
  }

  /**
   * Publishes the batch and waits for RabbitMQ's confirms. `confirmed` counts the leading events
   * confirmed, so a partly failed batch is marked in order and the rest is published again later.
   * The channel buffers at most one batch, so its write buffer needs no separate back-pressure.
   */
  private async publish(channel: ConfirmChannel, events: OutboxEvent[]): Promise<{ confirmed: number; error: Error | null }> {
    const outcomes: ('pending' | 'acked' | Error)[] = events.map(() => 'pending');
    const settled = events.map(
      (event, i) =>
        new Promise<void>((resolve) => {
          const message = amqpMessage(event);
          try {
            channel.publish(this.exchange, message.routingKey, message.content, message.options, (err) => {
              outcomes[i] = err ? (err instanceof Error ? err : new Error(String(err))) : 'acked';
              resolve();
            });
          } catch (error) {
            outcomes[i] = error as Error;
            resolve();
          }
        }),
    );
    let timer: NodeJS.Timeout | undefined;
    const timeoutMs = this.opts.confirmTimeoutMs ?? 30_000;
    await Promise.race([Promise.all(settled), new Promise((r) => (timer = setTimeout(r, timeoutMs)))]);
    clearTimeout(timer);
    const confirmed = outcomes.findIndex((o) => o !== 'acked');
    if (confirmed === -1) return { confirmed: events.length, error: null };
    const failure = outcomes.find((o): o is Error => o instanceof Error);
    return { confirmed, error: failure ?? new Error(`RabbitMQ did not confirm within ${timeoutMs} ms`) };
  }

  private signal(): void {
    this.signalled = true;
    this.wake?.();
  }

  /** Waits before reconnecting; only stop() cuts it short (a dying connection signals too). */
  private backOff(ms: number): Promise<void> {
    if (this.stopping) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.stopWaiting = null;
        resolve();
      }, ms);
      this.stopWaiting = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  /** Waits until the poll interval is up or something happens (a notification, a broken connection, stop). */
  private idle(): Promise<void> {
    const ms = this.opts.idlePollMs ?? 5000;
    if (this.signalled || this.stopping) {
      this.signalled = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.wake = null;
        this.signalled = false;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wake = done;
    });
  }
}
