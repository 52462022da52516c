import type { Request, Response } from 'express';
import type { Logger } from 'pino';
import { EventFeed, type EventFeedOptions } from '../infra/event-feed';
import type { EventFilter, StoredEvent } from '../store/events';
import { unavailable } from './errors';
import { eventMessage, matchesFilter, sseComment, sseRetry } from './sse';

/**
 * `GET /v1/events/stream`: each client is a session on the process's one EventFeed. A session
 * first catches up from the database (events after its cursor), while live events from the feed
 * wait in its queue; then it sends live events as the feed hands them out. The cursor (the seq
 * of the last event sent, the SSE `id`) drops whatever both paths deliver, so nothing comes twice.
 * A client that cannot keep up lets its queue fill; past `maxQueuedEvents` it is disconnected and
 * resumes with Last-Event-ID.
 */

export type EventStreamOptions = {
  /** A comment this often keeps proxies from closing an idle stream. */
  heartbeatMs: number;
  /** Live events a session may hold for a slow client before dropping it. */
  maxQueuedEvents: number;
  /** The reconnection delay the client is told. */
  retryMs: number;
};

export type EventStream = {
  /** Streams to `res` until the client leaves or the stream closes; `after` undefined: from now on. */
  open(req: Request, res: Response, from: { after?: bigint; filter: EventFilter }): Promise<void>;
  readonly clients: number;
  /** Ends every session (so a server can close) and stops listening. */
  close(): Promise<void>;
};

const CATCH_UP_PAGE = 500;

export function createEventStream(
  deps: Omit<EventFeedOptions, 'logger'> & { logger: Logger } & Partial<EventStreamOptions>,
): EventStream {
  const options: EventStreamOptions = {
    heartbeatMs: deps.heartbeatMs ?? 15_000,
    maxQueuedEvents: deps.maxQueuedEvents ?? 1000,
    retryMs: deps.retryMs ?? 2000,
  };
  const feed = new EventFeed(deps);
  const sessions = new Set<StreamSession>();
  let closed = false;

  return {
    async open(req, res, from) {
      if (closed) throw unavailable('the event stream is shutting down');
      const session = new StreamSession(res, from.filter, feed, options, deps.logger);
      sessions.add(session);
      res.on('close', () => {
        session.end();
        sessions.delete(session);
      });
      try {
        await session.subscribe(from.after);
      } catch (error) {
        session.end();
        deps.logger.warn({ err: (error as Error).message }, 'event stream: cannot start a session');
        throw unavailable('the event stream cannot read events now; retry shortly');
      }
      if (session.isEnded) throw unavailable('the event stream is shutting down'); // or the client left: nobody reads this
      req.socket.setNoDelay(true);
      res.status(200);
      res.setHeader('content-type', 'text/event-stream; charset=utf-8');
      res.setHeader('cache-control', 'no-cache, no-transform');
      res.setHeader('x-accel-buffering', 'no'); // nginx: do not buffer the stream
      res.flushHeaders();
      res.write(sseRetry(options.retryMs));
      await session.run();
    },
    get clients() {
      return sessions.size;
    },
    async close() {
      closed = true;
      for (const session of sessions) session.end();
      sessions.clear();
      await feed.close();
    },
  };
}

class StreamSession {
  private cursor = 0n;
  private queue: StoredEvent[] = [];
  private catchingUp = true;
  private overflowed = false;
  private blocked = false;
  private ended = false;
  private heartbeat: NodeJS.Timeout | null = null;
  private unsubscribe: () => void = () => undefined;

  constructor(
    private readonly res: Response,
    private readonly filter: EventFilter,
    private readonly feed: EventFeed,
    private readonly options: EventStreamOptions,
    private readonly logger: Logger,
  ) {}

  /** Live events are queued from here on; the cursor is set where the client wants to start. */
  async subscribe(after: bigint | undefined): Promise<void> {
    this.unsubscribe = await this.feed.subscribe(this.deliver);
    this.cursor = after ?? (await this.feed.latestSeq());
  }

  async run(): Promise<void> {
    this.heartbeat = setInterval(() => {
      if (!this.blocked) this.res.write(sseComment('keepalive'));
    }, this.options.heartbeatMs);
    try {
      await this.catchUp();
    } catch (error) {
      // The client reconnects with Last-Event-ID and catches up again.
      this.logger.warn({ err: (error as Error).message }, 'event stream: catching up failed; closing the session');
      this.end();
    }
  }

  get isEnded(): boolean {
    return this.ended;
  }

  end(): void {
    if (this.ended) return;
    this.ended = true;
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.unsubscribe();
    this.queue = [];
    // Before the headers went out, the route answers with an error instead.
    if (this.res.headersSent && !this.res.writableEnded) this.res.end();
  }

  private readonly deliver = (events: readonly StoredEvent[]): void => {
    for (const event of events) {
      if (this.ended) return;
      if (!matchesFilter(this.filter, event)) continue;
      if (this.catchingUp) {
        // Too much arrived while catching up: forget it and read it from the database instead.
        if (this.overflowed) continue;
        if (this.queue.length >= this.options.maxQueuedEvents) {
          this.overflowed = true;
          this.queue = [];
        } else this.queue.push(event);
      } else if (event.seq > this.cursor) {
        if (this.blocked || this.queue.length > 0) this.enqueue(event);
        else this.send(event);
      }
    }
  };

  /**
   * Reads the database from the cursor until a short page. Each pass starts with an empty queue:
   * whatever the feed handed out before the pass began was committed before it, so the pass reads it.
   */
  private async catchUp(): Promise<void> {
    for (;;) {
      this.queue = [];
      this.overflowed = false;
      let page: StoredEvent[];
      do {
        page = await this.feed.read(this.cursor, this.filter, CATCH_UP_PAGE);
        if (this.ended) return;
        for (const event of page) this.send(event);
        if (this.blocked) await this.drained();
        if (this.ended) return;
      } while (page.length === CATCH_UP_PAGE);
      if (!this.overflowed) break;
    }
    this.catchingUp = false;
    this.flush();
  }

  private enqueue(event: StoredEvent): void {
    if (this.queue.length >= this.options.maxQueuedEvents) {
      this.logger.info({ queued: this.queue.length, cursor: String(this.cursor) }, 'event stream: client too slow, disconnecting it');
      this.end();
      this.res.destroy();
      return;
    }
    this.queue.push(event);
  }

  private send(event: StoredEvent): void {
    if (event.seq <= this.cursor) return;
    this.cursor = event.seq;
    if (!this.res.write(eventMessage(event)) && !this.blocked) {
      this.blocked = true;
      this.res.once('drain', () => {
        this.blocked = false;
        this.flush();
      });
    }
  }

  private flush(): void {
    if (this.catchingUp) return;
    while (!this.blocked && !this.ended && this.queue.length > 0) this.send(this.queue.shift()!);
  }

  private drained(): Promise<void> {
    return new Promise((resolve) => {
      if (!this.blocked) return resolve();
      const done = () => {
        this.res.off('drain', done);
        this.res.off('close', done);
        resolve();
      };
      this.res.once('drain', done);
      this.res.once('close', done);
    });
  }
}
