import type { Logger } from 'pino';
import { deviceFromProjection } from '../domain/device-projection';
import { changedFields, type DeviceParts, type UpdatedField } from '../domain/device-parts';
import { DEVICE_UPDATES_CHANNEL, findDevicesUpdatedSince, readDevices, type StoredDevice } from '../store/devices';
import type { PgListener } from './pg-listener';
import type { Prisma } from './prisma';

/**
 * The robots' device updates as heartbeat batches store them, for every subscriber of this process
 * at once (GET /v1/device-updates/stream). Each batch that stored newer heartbeats notifies the
 * robots' serials on commit (store/devices.ts); the feed reads those robots' Devices in one
 * statement, one read at a time (serials notified meanwhile wait for the next), whoever is
 * subscribed, and hands out each robot whose newest heartbeat it had not handed out yet.
 *
 * `updatedFields` is what changed since the state this process last handed out (its parts
 * compared, domain/device-parts.ts), so a read that finds a later batch already committed misses
 * nothing; for a robot it has not handed out before, the fields its last batch changed. The
 * newest update of each robot is kept, so a client that fell behind can skip to it.
 */

export type DeviceUpdate = {
  serial: string;
  /** The robot's newest heartbeat, on its clock line: orders a robot's updates. */
  heartbeatAt: number;
  /** The Device as GET /v1/devices/{serial} shows it, as JSON: serialized once for every client. */
  deviceJson: string;
  updatedFields: UpdatedField[];
};

export type DeviceUpdateListener = (updates: readonly DeviceUpdate[]) => void;

export type DeviceUpdateFeedOptions = {
  prisma: Prisma;
  /** The process's listening connection, shared with its other feeds. */
  listener: PgListener;
  logger: Logger;
  /** How often to look for changed robots while the listener is down. */
  fallbackPollMs?: number;
};

// Robots read in one statement at most (the batch read's limit).
const READ_CHUNK = 1000;
// A batch's updated_at is its transaction's start, which may precede the last look by this much.
const CATCH_UP_MARGIN_MS = 10_000;

type Kept = { heartbeatAt: number; parts: DeviceParts | null; update: DeviceUpdate | null };

export class DeviceUpdateFeed {
  private readonly listeners = new Set<DeviceUpdateListener>();
  private readonly kept = new Map<string, Kept>();
  private readonly notified = new Set<string>();
  private started: Promise<void> | null = null;
  private unlisten: (() => void) | null = null;
  private pumping = false;
  private timer: NodeJS.Timeout | null = null;
  /** The database's clock when the feed last knew of every change: where a catch-up starts. */
  private lookedAt: Date | null = null;
  private closed = false;

  constructor(private readonly opts: DeviceUpdateFeedOptions) {}

  /** Resolves once every update stored from then on reaches `listener`. Returns the unsubscribe function. */
  async subscribe(listener: DeviceUpdateListener): Promise<() => void> {
    if (this.closed) throw new Error('device update feed closed');
    this.listeners.add(listener);
    try {
      await (this.started ??= this.start());
    } catch (error) {
      this.listeners.delete(listener);
      this.started = null;
      throw error;
    }
    return () => {
      this.listeners.delete(listener);
      // Nobody follows: what was kept for catching up would only go stale.
      if (this.listeners.size === 0) this.kept.clear();
    };
  }

  /** The newest update handed out for the robot. */
  latest(serial: string): DeviceUpdate | undefined {
    return this.kept.get(serial)?.update ?? undefined;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.listeners.clear();
    this.kept.clear();
    if (this.timer) clearTimeout(this.timer);
    this.unlisten?.();
    this.unlisten = null;
  }

  private async start(): Promise<void> {
    const unlisten = await this.opts.listener.listen(DEVICE_UPDATES_CHANNEL, {
      onNotify: (payload) => this.take(payload),
      onDeaf: () => this.pollWhileDeaf(),
      onListening: () => void this.catchUp(),
    });
    try {
      this.lookedAt = (await findDevicesUpdatedSince(this.opts.prisma, null)).now;
    } catch (error) {
      unlisten();
      throw error;
    }
    if (this.closed) return unlisten();
    this.unlisten = unlisten;
  }

  private take(payload: string): void {
    if (this.listeners.size === 0) return;
    let serials: unknown;
    try {
      serials = JSON.parse(payload);
    } catch {
      return this.opts.logger.warn({ payload: payload.slice(0, 200) }, 'device update feed: a notification that is not JSON');
    }
    if (!Array.isArray(serials)) return;
    for (const serial of serials) if (typeof serial === 'string') this.notified.add(serial);
    void this.pump();
  }

  /** Reads the notified robots and hands out their updates; one read at a time. */
  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (this.notified.size > 0 && !this.closed) {
        const serials = [...this.notified].slice(0, READ_CHUNK);
        for (const serial of serials) this.notified.delete(serial);
        let devices: StoredDevice[];
        try {
          devices = await readDevices(this.opts.prisma, serials);
        } catch (error) {
          // Read again on the next notification or poll.
          for (const serial of serials) this.notified.add(serial);
          this.opts.logger.warn({ err: (error as Error).message }, 'device update feed: reading devices failed');
          this.retrySoon();
          return;
        }
        for (const d of devices) if (this.lookedAt === null || d.projection.updatedAt > this.lookedAt) this.lookedAt = d.projection.updatedAt;
        if (this.listeners.size === 0) continue;
        const updates = devices.flatMap((d) => this.newer(d));
        if (updates.length > 0) this.dispatch(updates);
      }
    } finally {
      this.pumping = false;
    }
  }

  /** The robot's update if its heartbeat is newer than the last handed out, and it changed a field. */
  private newer(stored: StoredDevice): DeviceUpdate[] {
    const serial = stored.projection.serialNumber;
    const heartbeatAt = stored.projection.lastHeartbeatAt?.getTime() ?? null;
    const before = this.kept.get(serial);
    if (heartbeatAt === null || (before && heartbeatAt <= before.heartbeatAt)) return [];
    const updatedFields = before?.parts && stored.parts ? changedFields(before.parts, stored.parts) : stored.updatedFields;
    if (updatedFields.length === 0) {
      this.kept.set(serial, { heartbeatAt, parts: stored.parts, update: before?.update ?? null });
      return [];
    }
    const update: DeviceUpdate = { serial, heartbeatAt, deviceJson: JSON.stringify(deviceFromProjection(stored.projection)), updatedFields };
    this.kept.set(serial, { heartbeatAt, parts: stored.parts, update });
    return [update];
  }

  private dispatch(updates: readonly DeviceUpdate[]): void {
    for (const listener of [...this.listeners]) {
      try {
        listener(updates);
      } catch (error) {
        this.opts.logger.error({ err: (error as Error).message }, 'device update feed: a subscriber failed');
      }
    }
  }

  private retrySoon(): void {
    if (this.timer || this.closed) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.pump();
    }, this.opts.fallbackPollMs ?? 2000).unref();
  }

  /** Notifications are missed while the listener is down: look for changed robots instead, until it is back. */
  private pollWhileDeaf(): void {
    if (this.timer) clearTimeout(this.timer);
    if (this.closed) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.catchUp().then(() => {
        if (!this.opts.listener.listening) this.pollWhileDeaf();
      });
    }, this.opts.fallbackPollMs ?? 2000).unref();
  }

  private async catchUp(): Promise<void> {
    if (this.listeners.size === 0) return;
    try {
      const since = this.lookedAt && new Date(this.lookedAt.getTime() - CATCH_UP_MARGIN_MS);
      const { serials, now } = await findDevicesUpdatedSince(this.opts.prisma, since);
      this.lookedAt = now;
      for (const serial of serials) this.notified.add(serial);
      await this.pump();
    } catch (error) {
      this.opts.logger.warn({ err: (error as Error).message }, 'device update feed: looking for changed robots failed');
    }
  }
}
