import type { Logger } from 'pino';
import { robotsToNudge, SILENCE_BACKSTOP_EXTRA_MS, type NudgeMemo, type SilentRobot } from '../domain/silence';
import { mapLimit } from './map-limit';

/**
 * Offline detection without a timer per robot (domain/silence.ts): every `everyMs` it asks the
 * projection for robots their workflows hold online and nobody has heard from for the offline
 * timeout, and nudges each robot's workflow, which reads last-seen and decides. Silence counts only
 * once this worker has listened for the offline timeout: after a restart the robots get the time
 * to be heard from again, and likewise after this worker failed to store a batch (PostgreSQL, or
 * RabbitMQ for Device.HeartbeatReceived, unreachable): what it could not store is not silence.
 * Several ingest workers may sweep; a second nudge costs a workflow task, nothing more.
 */

export type NudgeResult = 'nudged' | 'no-workflow';

export type SilenceSweeperOptions = {
  /** Robots online in the projection, last seen before `silentSince` and at or after `heardSince`. */
  findSilent(silentSince: Date, heardSince: Date): Promise<SilentRobot[]>;
  nudgeRobot(robot: SilentRobot): Promise<NudgeResult>;
  offlineAfterMs: number;
  logger: Logger;
  everyMs?: number;
  /** Nudges in flight, and at most this many times 8 per sweep (the rest in the next). */
  concurrency?: number;
  now?: () => number;
  onSweep?(sweep: { silent: number; nudged: number; failed: number }): void;
};

export class SilenceSweeper {
  private readonly memo: NudgeMemo = new Map();
  private readonly now: () => number;
  private readonly log: Logger;
  private listeningSince = 0;
  private timer: NodeJS.Timeout | null = null;
  private sweeping: Promise<void> = Promise.resolve();
  private stopped = false;

  constructor(private readonly opts: SilenceSweeperOptions) {
    this.now = opts.now ?? Date.now;
    this.log = opts.logger.child({ component: 'silence-sweeper' });
  }

  start(): void {
    this.listeningSince = this.now();
    this.schedule();
  }

  /** This worker could not store what it heard: silence counts again only after a full offline timeout. */
  notHeard(): void {
    this.listeningSince = this.now();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.sweeping;
  }

  /** One sweep; does nothing until this worker has listened for the offline timeout. */
  async sweep(): Promise<void> {
    const now = this.now();
    if (now - this.listeningSince < this.opts.offlineAfterMs) return;
    const silentSince = new Date(now - this.opts.offlineAfterMs);
    const heardSince = new Date(now - this.opts.offlineAfterMs - SILENCE_BACKSTOP_EXTRA_MS);
    const silent = await this.opts.findSilent(silentSince, heardSince);
    const concurrency = this.opts.concurrency ?? 16;
    const due = robotsToNudge(silent, this.memo, now, this.opts.offlineAfterMs).slice(0, concurrency * 8);
    let nudged = 0;
    let failed = 0;
    const noWorkflow: string[] = [];
    await mapLimit(due, concurrency, async (robot) => {
      try {
        const result = await this.opts.nudgeRobot(robot);
        this.memo.set(robot.serial, { lastSeenAt: robot.lastSeenAt, nudgedAt: now, noWorkflow: result === 'no-workflow' });
        if (result === 'no-workflow') noWorkflow.push(robot.serial);
        else nudged += 1;
      } catch (error) {
        failed += 1;
        this.log.debug({ serial: robot.serial, err: (error as Error).message }, 'silence nudge failed; next sweep');
      }
    });
    if (noWorkflow.length > 0) {
      this.log.warn({ robots: noWorkflow.length, serials: noWorkflow.slice(0, 10) }, 'online in the projection but no robot workflow runs; left until they are heard from');
    }
    if (failed > 0) this.log.warn({ robots: failed }, 'silent robots could not be nudged; trying again next sweep');
    this.opts.onSweep?.({ silent: silent.length, nudged, failed });
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.sweeping = this.sweep()
        .catch((error) => this.log.warn({ err: (error as Error).message }, 'silence sweep failed; next sweep'))
        .finally(() => this.schedule());
    }, this.opts.everyMs ?? 2_000);
  }
}
