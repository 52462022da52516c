import type { Request, Response } from 'express';
import { updatableFields, type UpdatedField } from '../domain/device-parts';
import { DeviceUpdateFeed, type DeviceUpdate, type DeviceUpdateFeedOptions } from '../infra/device-update-feed';
import { unavailable } from './errors';
import { sseComment, sseMessage, sseRetry } from './sse';

/**
 * `GET /v1/device-updates/stream`: each client is a session on the process's one DeviceUpdateFeed,
 * following some robots or the whole fleet. While its socket takes what is written, a session
 * writes each update as it comes. A slow client skips ahead instead of queueing: once the socket
 * stops taking more, the session keeps only which robots have news (and which fields changed since
 * what it last sent), and when the socket drains it sends each such robot's newest state once. So
 * a session holds at most one entry per robot it follows, however far behind its client is.
 */

export type DeviceUpdateStreamOptions = {
  /** A comment this often keeps proxies from closing an idle stream. */
  heartbeatMs: number;
  /** The reconnection delay the client is told. */
  retryMs: number;
};

export type DeviceUpdateStream = {
  /** Streams the updates of `serials` (null: the whole fleet) to `res` until the client leaves or the stream closes. */
  open(req: Request, res: Response, serials: ReadonlySet<string> | null): Promise<void>;
  readonly clients: number;
  /** Robots with news waiting for a client that fell behind, over every session: at most the robots each follows. */
  readonly behind: number;
  /** Ends every session (so a server can close) and stops following. */
  close(): Promise<void>;
};

export function createDeviceUpdateStream(deps: DeviceUpdateFeedOptions & Partial<DeviceUpdateStreamOptions>): DeviceUpdateStream {
  const options: DeviceUpdateStreamOptions = { heartbeatMs: deps.heartbeatMs ?? 15_000, retryMs: deps.retryMs ?? 2000 };
  const feed = new DeviceUpdateFeed(deps);
  const sessions = new Set<UpdateSession>();
  let closed = false;

  return {
    async open(req, res, serials) {
      if (closed) throw unavailable('the device update stream is shutting down');
      const session = new UpdateSession(res, serials, feed, options);
      sessions.add(session);
      res.on('close', () => {
        session.end();
        sessions.delete(session);
      });
      try {
        await session.subscribe();
      } catch (error) {
        session.end();
        deps.logger.warn({ err: (error as Error).message }, 'device update stream: cannot start a session');
        throw unavailable('the device update stream cannot follow the fleet now; retry shortly');
      }
      if (session.isEnded) throw unavailable('the device update stream is shutting down');
      req.socket.setNoDelay(true);
      res.status(200);
      res.setHeader('content-type', 'text/event-stream; charset=utf-8');
      res.setHeader('cache-control', 'no-cache, no-transform');
      res.setHeader('x-accel-buffering', 'no');
      res.flushHeaders();
      res.write(sseRetry(options.retryMs));
      session.run();
    },
    get clients() {
      return sessions.size;
    },
    get behind() {
      let robots = 0;
      for (const session of sessions) robots += session.robotsBehind;
      return robots;
    },
    async close() {
      closed = true;
      for (const session of sessions) session.end();
      sessions.clear();
      await feed.close();
    },
  };
}

// The fields missed while behind, one bit each.
const bit = (field: UpdatedField) => 1 << updatableFields.indexOf(field);
const toBits = (fields: readonly UpdatedField[]) => fields.reduce((bits, f) => bits | bit(f), 0);
const fromBits = (bits: number) => updatableFields.filter((f) => (bits & bit(f)) !== 0);

/** One message: the seed's DeviceUpdate, `{ device, updatedFields }`. */
const updateMessage = (deviceJson: string, updatedFields: readonly UpdatedField[]) =>
  sseMessage({ data: `{"device":${deviceJson},"updatedFields":${JSON.stringify(updatedFields)}}` });

class UpdateSession {
  /** Robots with news the client has not been sent, and the fields changed since what it was sent. */
  private readonly behind = new Map<string, number>();
  private blocked = false;
  private ended = false;
  private heartbeat: NodeJS.Timeout | null = null;
  private unsubscribe: () => void = () => undefined;

  constructor(
    private readonly res: Response,
    private readonly serials: ReadonlySet<string> | null,
    private readonly feed: DeviceUpdateFeed,
    private readonly options: DeviceUpdateStreamOptions,
  ) {}

  async subscribe(): Promise<void> {
    const unsubscribe = await this.feed.subscribe(this.deliver);
    // The client may have left while the feed started.
    if (this.ended) unsubscribe();
    else this.unsubscribe = unsubscribe;
  }

  run(): void {
    this.heartbeat = setInterval(() => {
      if (!this.blocked) this.write(sseComment('keepalive'));
    }, this.options.heartbeatMs);
    this.flush();
  }

  get isEnded(): boolean {
    return this.ended;
  }

  get robotsBehind(): number {
    return this.behind.size;
  }

  end(): void {
    if (this.ended) return;
    this.ended = true;
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.unsubscribe();
    this.behind.clear();
    if (this.res.headersSent && !this.res.writableEnded) this.res.end();
  }

  private readonly deliver = (updates: readonly DeviceUpdate[]): void => {
    if (this.ended) return;
    for (const update of updates) {
      if (this.serials !== null && !this.serials.has(update.serial)) continue;
      if (this.blocked || this.behind.size > 0 || !this.res.headersSent) this.behind.set(update.serial, (this.behind.get(update.serial) ?? 0) | toBits(update.updatedFields));
      else this.send(update.deviceJson, update.updatedFields);
    }
    this.flush();
  };

  /** Sends each robot with news its newest state, while the socket takes it. */
  private flush(): void {
    if (!this.res.headersSent) return;
    for (const [serial, bits] of this.behind) {
      if (this.blocked || this.ended) return;
      this.behind.delete(serial);
      const latest = this.feed.latest(serial);
      if (latest) this.send(latest.deviceJson, fromBits(bits));
    }
  }

  private send(deviceJson: string, updatedFields: readonly UpdatedField[]): void {
    this.write(updateMessage(deviceJson, updatedFields));
  }

  private write(text: string): void {
    if (!this.res.write(text) && !this.blocked) {
      this.blocked = true;
      this.res.once('drain', () => {
        this.blocked = false;
        this.flush();
      });
    }
  }
}
