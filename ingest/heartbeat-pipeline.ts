import { parseHeartbeat, type Heartbeat } from '../domain/heartbeat';
import { decideForward, type ForwardMemo } from '../domain/forwarding';
import type { RejectedMessage } from '../activities/devices';

/**
 * The ingest worker's batch: each MQTT message is parsed at once; every `flushMs` the batch is
 * written (telemetry to the projection, rejects kept with their reason), then the heartbeats the
 * robot workflows must see are signalled, and only then are the messages acknowledged.
 * A failing step is retried with backoff while new messages wait (bounded by `maxPending`).
 */

export type PipelineDeps = {
  writeHeartbeats(heartbeats: Heartbeat[]): Promise<void>;
  storeRejected(rejected: RejectedMessage[]): Promise<void>;
  signalRobot(serial: string, heartbeats: Heartbeat[]): Promise<void>;
  onAccepted?(count: number): void;
  onRejected?(reason: string): void;
  onFlushed?(stats: FlushStats): void;
  onRetry?(step: string, error: unknown): void;
};

export type PipelineOptions = {
  forwardIntervalMs: number;
  flushMs?: number;
  maxPending?: number;
  signalConcurrency?: number;
  now?: () => number;
};

export type FlushStats = { heartbeats: number; rejected: number; signals: number; ms: number };

type Batch = { heartbeats: Heartbeat[]; rejected: RejectedMessage[]; forwards: Map<string, Heartbeat[]> };

const MAX_STORED_PAYLOAD = 16 * 1024;

export class HeartbeatPipeline {
  private batch = emptyBatch();
  private memos = new Map<string, ForwardMemo>();
  private flushing: Promise<void> | null = null;
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;
  private takeAcks: () => () => void = () => () => undefined;
  private readonly flushMs: number;
  private readonly maxPending: number;
  private readonly signalConcurrency: number;
  private readonly now: () => number;

  constructor(private readonly deps: PipelineDeps, private readonly options: PipelineOptions) {
    this.flushMs = options.flushMs ?? 100;
    this.maxPending = options.maxPending ?? 10_000;
    this.signalConcurrency = options.signalConcurrency ?? 32;
    this.now = options.now ?? Date.now;
  }

  /** Where the acknowledgements of the messages accepted so far come from; the result sends them. */
  setAckSource(takeAcks: () => () => void): void {
    this.takeAcks = takeAcks;
  }

  start(): void {
    this.timer = setInterval(() => void this.flush(), this.flushMs);
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
    const hb = parsed.heartbeat;
    this.batch.heartbeats.push(hb);
    this.deps.onAccepted?.(1);
    const { forward, memo } = decideForward(this.memos.get(hb.serial), hb, this.options.forwardIntervalMs);
    this.memos.set(hb.serial, memo);
    if (forward) {
      const list = this.batch.forwards.get(hb.serial) ?? [];
      list.push(hb);
      this.batch.forwards.set(hb.serial, list);
    }
  }

  pending(): number {
    return this.batch.heartbeats.length + this.batch.rejected.length;
  }

  isFull(): boolean {
    return this.pending() >= this.maxPending;
  }

  /** Resolves when the batch being written is done (at once if none is). */
  async drained(): Promise<void> {
    await this.flushing;
  }

  async flush(): Promise<void> {
    if (this.flushing) return this.flushing;
    if (this.pending() === 0) return;
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
    await this.retry('projection', () => this.deps.writeHeartbeats(batch.heartbeats));
    await this.retry('rejected', () => this.deps.storeRejected(batch.rejected));
    const robots = [...batch.forwards.entries()];
    await mapLimit(robots, this.signalConcurrency, ([serial, hbs]) => this.retry('signal', () => this.deps.signalRobot(serial, hbs)));
    releaseAcks();
    this.deps.onFlushed?.({ heartbeats: batch.heartbeats.length, rejected: batch.rejected.length, signals: robots.length, ms: this.now() - started });
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
  return { heartbeats: [], rejected: [], forwards: new Map() };
}

/** PostgreSQL text cannot hold NUL; very large payloads are cut, their size kept in the reason. */
function storablePayload(payload: Buffer): string {
  const text = payload.subarray(0, MAX_STORED_PAYLOAD).toString('utf8').replaceAll('\u0000', '\\u0000');
  return payload.length > MAX_STORED_PAYLOAD ? `${text}…[${payload.length} bytes]` : text;
}

async function mapLimit<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const lanes = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) await fn(items[next++]);
  });
  await Promise.all(lanes);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
