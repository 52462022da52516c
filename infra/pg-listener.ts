import type { Client } from 'pg';
import type { Logger } from 'pino';
import { pgSession } from './pg-session';

/**
 * A process's one listening PostgreSQL connection: each feed (infra/event-feed.ts,
 * infra/device-update-feed.ts) LISTENs on its channel through it, so an API process holds one such
 * connection whatever it streams and to however many clients. When the connection drops, every
 * feed hears `onDeaf` (it polls meanwhile) and, once a new one LISTENs again, `onListening` (it
 * reads what it missed).
 */

export type ChannelHandler = {
  onNotify(payload: string): void;
  /** The connection is back and listening again: read whatever was notified while it was away. */
  onListening?(): void;
  /** The connection is lost: notifications are missed until onListening. */
  onDeaf?(): void;
};

export type PgListenerOptions = {
  databaseUrl: string;
  logger: Logger;
  /** Its application_name in pg_stat_activity. */
  applicationName?: string;
};

export class PgListener {
  private readonly channels = new Map<string, Set<ChannelHandler>>();
  private client: Client | null = null;
  private connecting: Promise<Client> | null = null;
  private listened = new Set<string>();
  private reconnecting = false;
  private reconnectDelayMs = 0;
  private closed = false;

  constructor(private readonly opts: PgListenerOptions) {}

  get listening(): boolean {
    return this.client !== null;
  }

  /**
   * Resolves once `handler` hears every notification on `channel` from now on; fails (and
   * forgets the handler) while the connection cannot be made. Returns the function that stops it.
   */
  async listen(channel: string, handler: ChannelHandler): Promise<() => void> {
    if (this.closed) throw new Error('listener closed');
    if (!/^[a-z_][a-z0-9_]*$/.test(channel)) throw new Error(`not a channel name: ${channel}`);
    const handlers = this.channels.get(channel) ?? new Set();
    this.channels.set(channel, handlers.add(handler));
    const forget = () => {
      handlers.delete(handler);
      if (handlers.size === 0 && this.channels.get(channel) === handlers) this.channels.delete(channel);
    };
    try {
      if (this.reconnecting) throw new Error('the listening connection is down; reconnecting');
      const client = this.client ?? (await (this.connecting ??= this.connect()));
      if (!this.listened.has(channel)) {
        await client.query(`LISTEN ${channel}`);
        this.listened.add(channel);
      }
    } catch (error) {
      forget();
      throw error;
    }
    return forget;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.channels.clear();
    const client = this.client ?? (await this.connecting?.catch(() => null));
    this.client = null;
    await client?.end().catch(() => undefined);
  }

  private async connect(): Promise<Client> {
    const client = pgSession(this.opts.databaseUrl, this.opts.applicationName ?? 'fleet-listener');
    client.on('notification', (n) => {
      for (const handler of [...(this.channels.get(n.channel) ?? [])]) {
        try {
          handler.onNotify(n.payload ?? '');
        } catch (error) {
          this.opts.logger.error({ err: (error as Error).message, channel: n.channel }, 'listener: a handler failed');
        }
      }
    });
    client.on('error', (err) => this.lost(client, err));
    client.on('end', () => this.lost(client, new Error('connection ended')));
    try {
      await client.connect();
      const listened = new Set<string>();
      for (const channel of this.channels.keys()) {
        await client.query(`LISTEN ${channel}`);
        listened.add(channel);
      }
      if (this.closed) throw new Error('listener closed');
      this.client = client;
      this.listened = listened;
      this.reconnectDelayMs = 0;
      return client;
    } catch (error) {
      await client.end().catch(() => undefined);
      throw error;
    } finally {
      this.connecting = null;
    }
  }

  private lost(client: Client, err: Error): void {
    if (this.client !== client || this.closed) return;
    this.opts.logger.warn({ err: err.message }, 'listener: connection lost; reconnecting');
    this.client = null;
    this.listened = new Set();
    void client.end().catch(() => undefined);
    this.each((h) => h.onDeaf?.());
    void this.reconnect();
  }

  private async reconnect(): Promise<void> {
    if (this.reconnecting) return;
    this.reconnecting = true;
    try {
      while (!this.closed && this.client === null) {
        this.reconnectDelayMs = Math.min(Math.max(this.reconnectDelayMs * 2, 500), 30_000);
        await new Promise((r) => setTimeout(r, this.reconnectDelayMs).unref());
        if (this.closed) return;
        try {
          await (this.connecting ??= this.connect());
          this.opts.logger.info('listener: listening again');
        } catch (error) {
          this.opts.logger.warn({ err: (error as Error).message }, 'listener: reconnect failed');
        }
      }
    } finally {
      this.reconnecting = false;
    }
    if (this.client !== null) this.each((h) => h.onListening?.());
  }

  private each(fn: (handler: ChannelHandler) => void): void {
    for (const handlers of this.channels.values()) {
      for (const handler of [...handlers]) {
        try {
          fn(handler);
        } catch (error) {
          this.opts.logger.error({ err: (error as Error).message }, 'listener: a handler failed');
        }
      }
    }
  }
}
