import { parseHeartbeat, type Heartbeat } from '../domain/heartbeat';
import { decideForward, type ForwardMemo, type ForwardRule } from '../domain/forwarding';
import { protectPins, redactPins } from '../domain/lid-pins';
import type { RejectedMessage } from '../store/devices';
import { mapLimit } from './map-limit';

/**
 * The ingest worker's batch: each MQTT message is parsed at once; every `flushMs` the batch is
 * written (telemetry to the projection, rejects kept with their reason, and the heartbeats the
 * robot workflows must see to the robot inbox), and then the messages are acknowledged. The
 * inbox relay (robot-inbox-relay.ts) signals the workflows from there, so a slow or stopped
 * Temporal delays decisions, never ingestion or the projection.
 * A failing step is retried with backoff while new messages wait (bounded by `maxPending`).
 */

export type PipelineDeps = {
  writeHeartbeats(heartbeats: Heartbeat[]): Promise<void>;
  storeRejected(rejected: RejectedMessage[]): Promise<void>;
  /** `designed`: the robot inbox, in the order received. */
  queueForRobots?(heartbeats: Heartbeat[]): Promise<void>;
  /** `naive` only: one signal per heartbeat, inline. */
  signalRobot?(serial: string, heartbeats: Heartbeat[]): Promise<void>;
  /** A batch's heartbeats reached the robot inbox. */
  onQueued?(count: number): void;
  onAccepted?(count: number): void;
  onRejected?(reason: string): void;
  onFlushed?(stats: FlushStats): void;
  onRetry?(step: string, error: unknown): void;
};

/**
 * `designed`: the default described above. The other two exist for `npm run bench` only:
 * `naive` signals and writes every heartbeat one by one (the State Service's shape in seed 000);
 * `floor` writes batches and never signals, the most this machine ingests without Temporal.
 */
export const ingestModes = ['designed', 'naive', 'floor'] as const;
export type IngestMode = (typeof ingestModes)[number];

export type PipelineOptions = {
  forward: ForwardRule;
  /** PIN_HASH_SECRET: a keypad PIN goes no further than here, only its keyed hash (domain/lid-pins.ts). */
  pinSecret?: string;
  mode?: IngestMode;
  flushMs?: number;
  maxPending?: number;
  signalConcurrency?: number;
  now?: () => number;
};

/** `forwarded`: heartbeats queued for the robot workflows (naive: signalled). */
export type FlushStats = { heartbeats: number; rejected: number; forwarded: number; ms: number };

type Batch = { heartbeats: Heartbeat[]; rejected: RejectedMessage[]; forwards: Heartbeat[] };

const MAX_STORED_PAYLOAD = 16 * 1024;

export class HeartbeatPipeline {
  private batch = emptyBatch();
  private memos = new Map<string, ForwardMemo>();
  private flushing: Promise<void> | null = null;
  private writing = 0;
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;
  private takeAcks: () => () => void = () => () => undefined;
  private readonly flushMs: number;
  private readonly maxPending: number;
  private readonly signalConcurrency: number;
  private readonly now: () => number;
  private readonly mode: IngestMode;

  constructor(private readonly deps: PipelineDeps, private readonly options: PipelineOptions) {
    this.flushMs = options.flushMs ?? 100;
    this.maxPending = options.maxPending ?? 10_000;
    // naive: signal latency, not CPU, bounds the batch; more lanes help while Temporal keeps up.
    this.signalConcurrency = options.signalConcurrency ?? 64;
    this.now = options.now ?? Date.now;
    this.mode = options.mode ?? 'designed';
  }

  /** Where the acknowledgements of the messages accepted so far come from; the result sends them. */
  setAckSource(takeAcks: () => () => void): void {
    this.takeAcks = takeAcks;
  }

  start(): void {
    // Failures are reported through onRetry; after close() the last write may end in one.
    this.timer = setInterval(() => this.flush().catch(() => undefined), this.flushMs);
  }

  /** Parses and batches one message; never throws. */
  accept(topic: string, payload: Buffer): void {
    const receivedAt = this.now();
    const parsed = parseHeartbeat(topic, payload, receivedAt);
    if (!parsed.ok) {
      this.batch.rejected.push({ topic: topic.slice(0, 512), payload: storablePayload(payload), reason: parsed.reason, receivedAt });
      this.deps.onRejected?.(parsed.reason);
      return;
    }
    const hb = protectPins(parsed.heartbeat, this.options.pinSecret);
    this.batch.heartbeats.push(hb);
    this.deps.onAccepted?.(1);
    if (this.mode !== 'designed') return;
    const { forward, memo } = decideForward(this.memos.get(hb.serial), hb, this.options.forward);
    this.memos.set(hb.serial, memo);
    if (forward) this.batch.forwards.push(hb);
  }

  /** Messages accepted and not yet acknowledged. */
  pending(): number {
    return this.batchSize() + this.writing;
  }

  private batchSize(): number {
    return this.batch.heartbeats.length + this.batch.rejected.length;
  }

  isFull(): boolean {
    return this.pending() >= this.maxPending;
  }

  /** Resolves when the batch being written is done (at once if none is). */
  async drained(): Promise<void> {
    await this.flushing;
  }

  /** Resolves once there is room for more messages (see maxPending). */
  async whenRoom(): Promise<void> {
    while (this.isFull() && !this.stopped) {
      await this.flush();
      if (this.isFull()) await sleep(this.flushMs);
    }
  }

  /** Writes the batch, then acknowledges it. */
  async flush(): Promise<void> {
    if (this.flushing) return this.flushing;
    if (this.batchSize() === 0) return;
    const batch = this.batch;
    this.batch = emptyBatch();
    const releaseAcks = this.takeAcks();
    this.flushing = this.write(batch, releaseAcks).finally(() => (this.flushing = null));
    return this.flushing;
  }

  /**
   * Stops, trying once to write what has been accepted. Whatever fails stays unacknowledged,
   * so the broker sends it again to the next ingest worker.
   */
  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.stopped = true;
    await this.flushing?.catch(() => undefined);
    await this.flush().catch(() => undefined);
  }

  private async write(batch: Batch, releaseAcks: () => void): Promise<void> {
    const started = this.now();
    this.writing = batch.heartbeats.length + batch.rejected.length;
    try {
      if (this.mode === 'naive') await this.writeOneByOne(batch);
      else await this.writeBatch(batch);
    } finally {
      this.writing = 0;
    }
    releaseAcks();
    const forwarded = this.mode === 'naive' ? batch.heartbeats.length : batch.forwards.length;
    this.deps.onFlushed?.({ heartbeats: batch.heartbeats.length, rejected: batch.rejected.length, forwarded, ms: this.now() - started });
  }

  private async writeBatch(batch: Batch): Promise<void> {
    await this.retry('projection', () => this.deps.writeHeartbeats(batch.heartbeats));
    await this.retry('rejected', () => this.deps.storeRejected(batch.rejected));
    if (batch.forwards.length === 0 || !this.deps.queueForRobots) return;
    await this.retry('inbox', () => this.deps.queueForRobots!(batch.forwards));
    this.deps.onQueued?.(batch.forwards.length);
  }

  private async writeOneByOne(batch: Batch): Promise<void> {
    const signal = this.deps.signalRobot;
    await mapLimit(batch.heartbeats, this.signalConcurrency, async (hb) => {
      await this.retry('projection', () => this.deps.writeHeartbeats([hb]));
      if (signal) await this.retry('signal', () => signal(hb.serial, [hb]));
    });
    await this.retry('rejected', () => this.deps.storeRejected(batch.rejected));
  }

  private async retry(step: string, fn: () => Promise<void>): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await fn();
      } catch (error) {
        if (this.stopped) throw error;
        this.deps.onRetry?.(step, error);
        await sleep(Math.min(100 * 2 ** attempt, 5_000));
      }
    }
  }
}

function emptyBatch(): Batch {
  return { heartbeats: [], rejected: [], forwards: [] };
}

/** PostgreSQL text cannot hold NUL; very large payloads are cut, their size kept in the reason. */
function storablePayload(payload: Buffer): string {
  const text = redactPins(payload.subarray(0, MAX_STORED_PAYLOAD).toString('utf8')).replaceAll('\u0000', '\\u0000');
  return payload.length > MAX_STORED_PAYLOAD ? `${text}…[${payload.length} bytes]` : text;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
