import { Counter, Gauge, Histogram, register } from 'prom-client';

/** Ingest metrics in prom-client's default registry, which the API serves on /metrics. */

function counter(name: string, help: string, labelNames: string[] = []): Counter {
  return (register.getSingleMetric(name) as Counter) ?? new Counter({ name, help, labelNames });
}

function histogram(name: string, help: string, buckets: number[]): Histogram {
  return (register.getSingleMetric(name) as Histogram) ?? new Histogram({ name, help, buckets });
}

let pendingSource: () => number = () => 0;
let inboxSource: () => Promise<{ rows: number; oldestSeconds: number }> = async () => ({ rows: 0, oldestSeconds: 0 });

/** Where the pending gauge reads from: the ingest worker's pipeline (one per process). */
export function setPendingSource(source: () => number): void {
  pendingSource = source;
}

/** Where the robot inbox gauges read from (store/robot-inbox.ts). */
export function setInboxSource(source: typeof inboxSource): void {
  inboxSource = source;
}

function inboxGauge(name: string, help: string, pick: (b: { rows: number; oldestSeconds: number }) => number): Gauge {
  return (
    (register.getSingleMetric(name) as Gauge) ??
    new Gauge({
      name,
      help,
      // A database that is down must not take /metrics with it: the gauge keeps its last value.
      async collect() {
        const backlog = await Promise.race([inboxSource().catch(() => null), new Promise<null>((r) => setTimeout(r, 1000, null))]);
        if (backlog) this.set(pick(backlog));
      },
    })
  );
}

export const ingestMetrics = {
  pending:
    (register.getSingleMetric('fleet_ingest_pending_messages') as Gauge) ??
    new Gauge({
      name: 'fleet_ingest_pending_messages',
      help: 'Robot messages accepted and not yet acknowledged; reading stops at INGEST_MAX_PENDING',
      collect() {
        this.set(pendingSource());
      },
    }),
  accepted: counter('fleet_ingest_heartbeats_accepted_total', 'Heartbeats that passed validation'),
  rejected: counter('fleet_ingest_messages_rejected_total', 'Robot messages rejected, by the field at fault', ['field']),
  dropped: counter('fleet_ingest_parts_dropped_total', 'Parts of heartbeats that failed validation and were left out, the rest applied, by field', ['field']),
  signals: counter('fleet_ingest_workflow_signals_total', 'Robot workflow signals sent (one per robot per relay round)'),
  written: counter('fleet_ingest_heartbeats_written_total', 'Heartbeats whose batch was written and acknowledged'),
  inboxRows: inboxGauge('fleet_robot_inbox_rows', 'Heartbeats waiting in the robot inbox for their workflow', (b) => b.rows),
  inboxOldest: inboxGauge('fleet_robot_inbox_oldest_seconds', 'Age of the oldest heartbeat waiting in the robot inbox', (b) => b.oldestSeconds),
  inboxAge: histogram(
    'fleet_robot_inbox_wait_seconds',
    'Per relay round, how long its oldest heartbeat waited in the robot inbox before the signal',
    [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
  ),
  silenceNudges: counter('fleet_ingest_silence_nudges_total', 'Robot workflows told by the silence sweeper that their robot has gone quiet'),
  retries: counter('fleet_ingest_retries_total', 'Batch steps retried after an error', ['step']),
  clockCorrected: counter('fleet_ingest_clock_corrected_total', 'Heartbeats whose time is not the robot clock\'s own: the clock is off by more than CLOCK_SKEW_TOLERANCE_SECONDS (domain/robot-clock.ts)'),
  clockEpochs: counter('fleet_ingest_clock_epochs_total', 'Robot clock epochs started: the clock jumped ahead, was set back, or is right again', ['change']),
  flushSeconds: histogram(
    'fleet_ingest_flush_seconds',
    'Time to write a batch (projection, rejects, robot inbox) and acknowledge it',
    [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
  ),
};

/** `gps.lat: Too big` -> `gps`: one label value per top-level field keeps cardinality low. */
export function rejectedField(reason: string): string {
  return /^[A-Za-z_][\w-]{0,39}/.exec(reason)?.[0] ?? 'payload';
}
