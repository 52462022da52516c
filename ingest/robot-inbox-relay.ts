import type { Logger } from 'pino';
import type { Heartbeat } from '../domain/heartbeat';
import { pgSession, type PgSession } from '../infra/pg-session';
import { relayRobotInbox, type RobotInboxRow } from '../store/robot-inbox';
import { mapLimit } from './map-limit';

/**
 * Signals the robot inbox (store/robot-inbox.ts) to the robot workflows. In one transaction at
 * a time it claims the oldest rows, groups them by robot, sends each robot one signal with its
 * heartbeats in order, and deletes the rows of the robots signalled before committing. A robot
 * whose signal failed keeps its rows, in order, and is tried again after a backoff of its own, so
 * it holds up no other robot.
 *
 * When Temporal lags, rows wait here while the projection stays fresh and the robots are
 * acknowledged; a round then carries many heartbeats per robot in one signal, so Temporal's work
 * grows with the robots, not the backlog. A crash between a signal and the commit signals those
 * rows again: the robot workflow takes a heartbeat once, by its timestamp.
 * Several ingest workers may run: an advisory lock lets one relay work at a time, in id order.
 */

/** Sends one robot its heartbeats (clients/robots.ts signalHeartbeats, or a test's stand-in). */
export type RobotSignaller = (serial: string, heartbeats: Heartbeat[]) => Promise<void>;

export type RobotInboxRelayOptions = {
  databaseUrl: string;
  signalRobot(serial: string, heartbeats: Heartbeat[]): Promise<void>;
  logger: Logger;
  /** Rows claimed per round. */
  batchSize?: number;
  /** Heartbeats per robot per signal, well under Temporal's payload limit; the rest go next round. */
  perRobotMax?: number;
  concurrency?: number;
  /** Looks at the inbox this often without a kick (rows of other ingest workers, or left by a crash). */
  idlePollMs?: number;
  maxRetryDelayMs?: number;
  onRound?(round: RelayRound): void;
};

export type RelayRound = { claimed: number; signals: number; heartbeats: number; failed: number; oldestAgeMs: number };

export class RobotInboxRelay {
  private readonly batchSize: number;
  private readonly perRobotMax: number;
  private readonly concurrency: number;
  private readonly log: Logger;
  private stopping = false;
  private running: Promise<void> = Promise.resolve();
  private kicked = false;
  private wake: (() => void) | null = null;
  private readonly backoff = new Map<string, { until: number; delayMs: number }>();

  constructor(private readonly opts: RobotInboxRelayOptions) {
    this.batchSize = opts.batchSize ?? 5000;
    this.perRobotMax = opts.perRobotMax ?? 200;
    this.concurrency = opts.concurrency ?? 64;
    this.log = opts.logger.child({ component: 'robot-inbox-relay' });
  }

  start(): void {
    this.running = this.loop();
  }

  /** New rows were committed: look now rather than at the next poll. */
  kick(): void {
    this.kicked = true;
    this.wake?.();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.wake?.();
    await this.running;
  }

  private async loop(): Promise<void> {
    let delayMs = 0;
    while (!this.stopping) {
      const pg = pgSession(this.opts.databaseUrl, 'fleet-robot-inbox-relay');
      pg.on('error', () => undefined); // the next query fails and the loop reconnects
      try {
        await pg.connect();
        while (!this.stopping) {
          this.kicked = false;
          const round = await this.relayRound(pg);
          delayMs = 0;
          if (round.failed > 0 && round.signals === 0) {
            this.log.warn({ robots: round.failed }, 'robot workflows could not be signalled; their heartbeats stay in the inbox');
          }
          // Rows that came in while a round was signalling go in the next round at once.
          if (round.claimed === 0) await this.idle();
          else if (round.signals === 0) await this.sleep(this.nextRetryInMs());
        }
      } catch (error) {
        if (this.stopping) break;
        delayMs = Math.min(Math.max(delayMs * 2, 200), this.maxRetryDelayMs());
        this.log.warn({ err: (error as Error).message, retryInMs: delayMs }, 'robot inbox unreadable; retrying');
        await this.sleep(delayMs);
      } finally {
        await pg.end().catch(() => undefined);
      }
    }
  }

  /** Claims, signals and removes up to one batch. */
  private async relayRound(pg: PgSession): Promise<RelayRound> {
    const relayed = await relayRobotInbox(pg, this.batchSize, (rows) => this.signalRobots(rows));
    if (relayed === null) return { claimed: 0, signals: 0, heartbeats: 0, failed: 0, oldestAgeMs: 0 }; // another relay is at it
    if (relayed.round.claimed > 0) this.opts.onRound?.(relayed.round);
    return relayed.round;
  }

  /** Signals each due robot its rows; answers the ids of the rows signalled, to be deleted. */
  private async signalRobots(rows: RobotInboxRow[]): Promise<{ done: string[]; round: RelayRound }> {
    const now = Date.now();
    const robots = byRobot(rows, this.perRobotMax, (serial) => (this.backoff.get(serial)?.until ?? 0) <= now);
    const done: string[] = [];
    let failed = 0;
    await mapLimit([...robots], this.concurrency, async ([serial, list]) => {
      try {
        await this.opts.signalRobot(serial, list.map((r) => r.heartbeat));
        done.push(...list.map((r) => r.id));
        this.backoff.delete(serial);
      } catch (error) {
        failed += 1;
        this.backOff(serial);
        this.log.debug({ serial, err: (error as Error).message }, 'robot signal failed');
      }
    });
    return { done, round: { claimed: rows.length, signals: robots.size - failed, heartbeats: done.length, failed, oldestAgeMs: rows[0]?.age_ms ?? 0 } };
  }

  private backOff(serial: string): void {
    const delayMs = Math.min(Math.max((this.backoff.get(serial)?.delayMs ?? 0) * 2, 200), this.maxRetryDelayMs());
    this.backoff.set(serial, { until: Date.now() + delayMs, delayMs });
  }

  private nextRetryInMs(): number {
    const soonest = Math.min(...[...this.backoff.values()].map((b) => b.until));
    return Math.min(Math.max(soonest - Date.now(), 50), this.maxRetryDelayMs());
  }

  private maxRetryDelayMs(): number {
    return this.opts.maxRetryDelayMs ?? 5_000;
  }

  private async idle(): Promise<void> {
    if (this.kicked || this.stopping) return;
    await this.sleep(this.opts.idlePollMs ?? 500);
  }

  private sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wake = done;
    }).finally(() => (this.wake = null));
  }
}

/** Each due robot's rows in id order, at most `max` of them: its later rows wait for the next round. */
function byRobot(rows: RobotInboxRow[], max: number, due: (serial: string) => boolean): Map<string, RobotInboxRow[]> {
  const robots = new Map<string, RobotInboxRow[]>();
  for (const row of rows) {
    if (!due(row.serial_number)) continue;
    const list = robots.get(row.serial_number) ?? [];
    if (list.length < max) list.push(row);
    robots.set(row.serial_number, list);
  }
  return robots;
}
