import type { Client } from 'pg';
import type { Logger } from 'pino';
import { readEvents, readLatestEventSeq, type EventFilter, type StoredEvent } from '../store/events';
import type { PgListener } from './pg-listener';
import type { Prisma } from './prisma';

/**
 * New domain events as they are recorded, for every subscriber of this process at once: the
 * process's listening connection (infra/pg-listener.ts) LISTENs on the channel the domain_events
 * trigger notifies, and each notification costs one read of the events after the highest seq seen,
 * whoever is subscribed. Events are numbered in commit order
 * (prisma/migrations/20261123040000_event_outbox), so reading by seq never skips one. When the
 * listening connection drops, a slow poll stands in while it reconnects.
 */

export type EventFeedListener = (events: readonly StoredEvent[]) => void;

export const EVENTS_CHANNEL = 'domain_events';

/** From now on `client` hears of each domain event recorded (its `notification` event). */
export async function listenForEvents(client: Client): Promise<void> {
  await client.query(`LISTEN ${EVENTS_CHANNEL}`);
}
const PAGE = 500;

export type EventFeedOptions = {
  prisma: Prisma;
  /** The process's listening connection, shared with its other feeds. */
  listener: PgListener;
  logger: Logger;
  /** How often to read while the listener is down. */
  fallbackPollMs?: number;
  /** A read now and then even while listening, in case a notification went astray. */
  safetyPollMs?: number;
};

export class EventFeed {
  private readonly listeners = new Set<EventFeedListener>();
  private started: Promise<void> | null = null;
  private unlisten: (() => void) | null = null;
  private highWater = 0n;
  private pumping = false;
  private pumpAgain = false;
  private timer: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(private readonly opts: EventFeedOptions) {}

  /**
   * Resolves once the feed is running: every event committed from then on reaches `listener`
   * (older ones are the caller's to read with `read`). Returns the unsubscribe function.
   */
  async subscribe(listener: EventFeedListener): Promise<() => void> {
    if (this.closed) throw new Error('event feed closed');
    this.listeners.add(listener);
    try {
      await (this.started ??= this.start());
    } catch (error) {
      this.listeners.delete(listener);
      this.started = null;
      throw error;
    }
    return () => this.listeners.delete(listener);
  }

  /** Events after `after` in seq order, at most `limit`. */
  read(after: bigint, filter: EventFilter, limit: number): Promise<StoredEvent[]> {
    return readEvents(this.opts.prisma, after, filter, limit);
  }

  latestSeq(): Promise<bigint> {
    return readLatestEventSeq(this.opts.prisma);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.listeners.clear();
    if (this.timer) clearTimeout(this.timer);
    this.unlisten?.();
    this.unlisten = null;
  }

  private async start(): Promise<void> {
    // LISTEN before reading the high-water mark: an event committed in between is then heard of.
    const unlisten = await this.opts.listener.listen(EVENTS_CHANNEL, {
      onNotify: () => void this.pump(),
      onDeaf: () => this.schedulePoll(),
      onListening: () => {
        this.schedulePoll();
        void this.pump(); // whatever was recorded while we were deaf
      },
    });
    try {
      this.highWater = await this.latestSeq();
    } catch (error) {
      unlisten();
      throw error;
    }
    if (this.closed) return unlisten();
    this.unlisten = unlisten;
    this.schedulePoll();
  }

  private schedulePoll(soon = false): void {
    if (this.timer) clearTimeout(this.timer);
    if (this.closed) return;
    const every = this.opts.listener.listening && !soon ? (this.opts.safetyPollMs ?? 30_000) : (this.opts.fallbackPollMs ?? 2_000);
    this.timer = setTimeout(() => {
      void this.pump();
      this.schedulePoll();
    }, every).unref();
  }

  /** Reads what is new and hands it out; one read at a time, repeated if more was signalled meanwhile. */
  private async pump(): Promise<void> {
    if (this.pumping) {
      this.pumpAgain = true;
      return;
    }
    this.pumping = true;
    try {
      do {
        this.pumpAgain = false;
        let page: StoredEvent[];
        do {
          if (this.closed) return;
          page = await this.read(this.highWater, {}, PAGE);
          if (page.length === 0) break;
          this.highWater = page[page.length - 1].seq;
          this.dispatch(page);
        } while (page.length === PAGE);
      } while (this.pumpAgain);
    } catch (error) {
      // The next notification, or a poll soon, reads again from the same high-water mark.
      this.opts.logger.warn({ err: (error as Error).message }, 'event feed: reading new events failed');
      this.schedulePoll(true);
    } finally {
      this.pumping = false;
    }
  }

  private dispatch(events: readonly StoredEvent[]): void {
    for (const listener of [...this.listeners]) {
      try {
        listener(events);
      } catch (error) {
        this.opts.logger.error({ err: (error as Error).message }, 'event feed: a subscriber failed');
      }
    }
  }
}
