import { parseHeartbeat, type Heartbeat } from '../domain/heartbeat';
import { decideForward, type ForwardMemo } from '../domain/forwarding';
import { protectPins, redactPins } from '../domain/lid-pins';
import type { RejectedMessage } from '../activities/devices';

/**
 * The ingest worker's batch: each MQTT message is parsed at once; every `flushMs` the batch is
 * written (telemetry to the projection, rejects kept with their reason), then the heartbeats the
 * robot workflows must see are signalled, and only then are the messages acknowledged.
 * Signalling runs beside the next batches' writes, so a slow Temporal never delays the
 * projection; batches waiting for it are signalled together, in order, one signal per robot.
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

/**
 * `designed`: the default described above. The other two exist for `npm run bench` only:
 * `naive` signals and writes every heartbeat one by one (the State Service's shape in seed 000);
 * `floor` writes batches and never signals, the most this machine ingests without Temporal.
 */
export const ingestModes = ['designed', 'naive', 'floor'] as const;
export type IngestMode = (typeof ingestModes)[number];

export type PipelineOptions = {
  forwardIntervalMs: number;
  /** PIN_HASH_SECRET: a keypad PIN goes no further than here, only its keyed hash (domain/lid-pins.ts). */
  pinSecret?: string;
  mode?: IngestMode;
  flushMs?: number;
  maxPending?: number;
  signalConcurrency?: number;
  now?: () => number;
};

export type FlushStats = { heartbeats: number; rejected: number; signals: number; ms: number };

type Batch = { heartbeats: Heartbeat[]; rejected: RejectedMessage[]; forwards: Map<string, Heartbeat[]> };
type Written = { batch: Batch; releaseAcks: () => void; started: number };

const MAX_STORED_PAYLOAD = 16 * 1024;

export class HeartbeatPipeline {
  private batch = emptyBatch();
  private memos = new Map<string, ForwardMemo>();
  private flushing: Promise<void> | null = null;
  private toSignal: Written[] = [];
  private signalling: Promise<void> | null = null;
  private signalLoopRunning = false;
  private unsignalled = 0;
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
    // Signal latency, not CPU, bounds a round: more lanes help while Temporal keeps up.
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
    const { forward, memo } = decideForward(this.memos.get(hb.serial), hb, this.options.forwardIntervalMs);
    this.memos.set(hb.serial, memo);
    if (forward) {
      const list = this.batch.forwards.get(hb.serial) ?? [];
      list.push(hb);
      this.batch.forwards.set(hb.serial, list);
    }
  }

  /** Messages accepted and not yet acknowledged. */
  pending(): number {
    return this.batchSize() + this.unsignalled;
  }

  private batchSize(): number {
    return this.batch.heartbeats.length + this.batch.rejected.length;
  }

  isFull(): boolean {
    return this.pending() >= this.maxPending;
  }

  /** Resolves when the batches being written and signalled are done (at once if none is). */
  async drained(): Promise<void> {
    await this.flushing;
    await this.signalling;
  }

  /** Resolves once there is room for more messages (see maxPending). */
  async whenRoom(): Promise<void> {
    while (this.isFull() && !this.stopped) {
      await this.flush();
      if (this.isFull()) await Promise.race([this.signalling, sleep(this.flushMs)]);
    }
  }

  /** Writes the batch to the projection; signalling and acknowledging follow on their own. */
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
    await this.signalling;
  }

  private async write(batch: Batch, releaseAcks: () => void): Promise<void> {
    const started = this.now();
    if (this.mode === 'naive') return this.writeOneByOne(batch, releaseAcks, started);
    await this.retry('projection', () => this.deps.writeHeartbeats(batch.heartbeats));
    await this.retry('rejected', () => this.deps.storeRejected(batch.rejected));
    this.toSignal.push({ batch, releaseAcks, started });
    this.unsignalled += batch.heartbeats.length + batch.rejected.length;
    if (!this.signalLoopRunning) {
      this.signalLoopRunning = true;
      this.signalling = this.signalLoop().catch(() => undefined);
    }
  }

  /** Signals the written batches in order; those that queued up meanwhile go as one round. */
  private async signalLoop(): Promise<void> {
    try {
      while (this.toSignal.length > 0) {
        const round = this.toSignal.splice(0);
        const forwards = new Map<string, Heartbeat[]>();
        for (const { batch } of round) {
          for (const [serial, hbs] of batch.forwards) forwards.set(serial, [...(forwards.get(serial) ?? []), ...hbs]);
        }
        await mapLimit([...forwards], this.signalConcurrency, ([serial, hbs]) => this.retry('signal', () => this.deps.signalRobot(serial, hbs)));
        round.forEach(({ batch, releaseAcks, started }, i) => {
          releaseAcks();
          this.unsignalled -= batch.heartbeats.length + batch.rejected.length;
          const signals = i === 0 ? forwards.size : 0;
          this.deps.onFlushed?.({ heartbeats: batch.heartbeats.length, rejected: batch.rejected.length, signals, ms: this.now() - started });
        });
      }
    } finally {
      this.signalLoopRunning = false;
    }
  }

  private async writeOneByOne(batch: Batch, releaseAcks: () => void, started: number): Promise<void> {
    await mapLimit(batch.heartbeats, this.signalConcurrency, async (hb) => {
      await this.retry('projection', () => this.deps.writeHeartbeats([hb]));
      await this.retry('signal', () => this.deps.signalRobot(hb.serial, [hb]));
    });
    await this.retry('rejected', () => this.deps.storeRejected(batch.rejected));
    releaseAcks();
    const n = batch.heartbeats.length;
    this.deps.onFlushed?.({ heartbeats: n, rejected: batch.rejected.length, signals: n, ms: this.now() - started });
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
  const text = redactPins(payload.subarray(0, MAX_STORED_PAYLOAD).toString('utf8')).replaceAll('\u0000', '\\u0000');
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
