import { parseHeartbeat, parseRuleMessage, type DroppedPart, type Heartbeat, type ParseResult } from '../domain/heartbeat';
import { protectPins, redactPins } from '../domain/lid-pins';
import type { RejectedMessage } from '../store/rejected-messages';

/**
 * The ingest worker's batch: each MQTT message is parsed at once; every `flushMs` the batch is
 * written (the heartbeats taken into the projection, and the ones the robot workflows must see
 * queued in the robot inbox, in one transaction: store/devices.ts `storeHeartbeats`; rejects kept
 * with their reason), and then the messages are acknowledged. The inbox relay
 * (robot-inbox-relay.ts) signals the workflows from there, so a slow or stopped Temporal delays
 * decisions, never ingestion or the projection.
 * A failing step is retried with backoff while new messages wait (bounded by `maxPending`).
 */

export type PipelineDeps = {
  /** Takes the batch's heartbeats in; the benchmark's yardsticks (bench/) give their own. */
  storeHeartbeats(heartbeats: Heartbeat[]): Promise<StoredBatch>;
  storeRejected(rejected: RejectedMessage[]): Promise<void>;
  onAccepted?(count: number): void;
  onRejected?(reason: string): void;
  /** A heartbeat was applied without parts that failed validation. */
  onDropped?(parts: DroppedPart[]): void;
  onFlushed?(stats: FlushStats): void;
  onRetry?(step: string, error: unknown): void;
};

/** `forwarded`: heartbeats queued for (or signalled to) the robot workflows. */
export type StoredBatch = { forwarded: number; corrected?: number; epochs?: string[] };

export type PipelineOptions = {
  /** PIN_HASH_SECRET: a keypad PIN goes no further than here, only its keyed hash (domain/lid-pins.ts). */
  pinSecret?: string;
  flushMs?: number;
  maxPending?: number;
  now?: () => number;
};

export type FlushStats = StoredBatch & { heartbeats: number; rejected: number; ms: number };

type Batch = { heartbeats: Heartbeat[]; rejected: RejectedMessage[] };

const MAX_STORED_PAYLOAD = 16 * 1024;

export class HeartbeatPipeline {
  private batch = emptyBatch();
  private flushing: Promise<void> | null = null;
  private writing = 0;
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;
  private takeAcks: () => () => void = () => () => undefined;
  private readonly flushMs: number;
  private readonly maxPending: number;
  private readonly now: () => number;

  constructor(private readonly deps: PipelineDeps, private readonly options: PipelineOptions = {}) {
    this.flushMs = options.flushMs ?? 100;
    this.maxPending = options.maxPending ?? 10_000;
    this.now = options.now ?? Date.now;
  }

  /** Where the acknowledgements of the messages accepted so far come from; the result sends them. */
  setAckSource(takeAcks: () => () => void): void {
    this.takeAcks = takeAcks;
  }

  start(): void {
    // Failures are reported through onRetry; after close() the last write may end in one.
    this.timer = setInterval(() => this.flush().catch(() => undefined), this.flushMs);
  }

  /** Parses and batches one MQTT message; never throws. */
  accept(topic: string, payload: Buffer): void {
    const receivedAt = this.now();
    this.take(parseHeartbeat(topic, payload, receivedAt), topic, payload, receivedAt);
  }

  /** Parses and batches one SQS message from the IoT Rule, received by AWS at `receivedAt`; never throws. */
  acceptRuleMessage(body: string, receivedAt: number): void {
    const parsed = parseRuleMessage(body, receivedAt);
    this.take(parsed, parsed.topic, Buffer.from(body), receivedAt);
  }

  private take(parsed: ParseResult, topic: string, payload: Buffer, receivedAt: number): void {
    if (!parsed.ok) {
      this.batch.rejected.push({ topic: topic.slice(0, 512), payload: storablePayload(payload), reason: parsed.reason, receivedAt });
      this.deps.onRejected?.(parsed.reason);
      return;
    }
    this.batch.heartbeats.push(protectPins(parsed.heartbeat, this.options.pinSecret));
    this.deps.onAccepted?.(1);
    if (parsed.dropped.length === 0) return;
    const reason = parsed.dropped.map((d) => d.reason).join('; ');
    this.batch.rejected.push({ topic: topic.slice(0, 512), payload: storablePayload(payload), reason, receivedAt, applied: true });
    this.deps.onDropped?.(parsed.dropped);
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
    let stored: StoredBatch = { forwarded: 0 };
    try {
      if (batch.heartbeats.length > 0) stored = await this.retry('projection', () => this.deps.storeHeartbeats(batch.heartbeats));
      if (batch.rejected.length > 0) await this.retry('rejected', () => this.deps.storeRejected(batch.rejected));
    } finally {
      this.writing = 0;
    }
    releaseAcks();
    this.deps.onFlushed?.({ ...stored, heartbeats: batch.heartbeats.length, rejected: batch.rejected.length, ms: this.now() - started });
  }

  private async retry<T>(step: string, fn: () => Promise<T>): Promise<T> {
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
  return { heartbeats: [], rejected: [] };
}

/** PostgreSQL text cannot hold NUL; very large payloads are cut, their size kept in the reason. */
function storablePayload(payload: Buffer): string {
  const text = redactPins(payload.subarray(0, MAX_STORED_PAYLOAD).toString('utf8')).replaceAll('\u0000', '\\u0000');
  return payload.length > MAX_STORED_PAYLOAD ? `${text}…[${payload.length} bytes]` : text;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
