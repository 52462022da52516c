import { Counter, Gauge, Histogram, register } from 'prom-client';

/** Ingest metrics in prom-client's default registry, which the API serves on /metrics. */

function counter(name: string, help: string, labelNames: string[] = []): Counter {
  return (register.getSingleMetric(name) as Counter) ?? new Counter({ name, help, labelNames });
}

let pendingSource: () => number = () => 0;

/** Where the pending gauge reads from: the ingest worker's pipeline (one per process). */
export function setPendingSource(source: () => number): void {
  pendingSource = source;
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
  signals: counter('fleet_ingest_workflow_signals_total', 'Robot workflow signals sent (one per robot per batch)'),
  written: counter('fleet_ingest_heartbeats_written_total', 'Heartbeats whose batch was written, signalled and acknowledged'),
  retries: counter('fleet_ingest_retries_total', 'Batch steps retried after an error', ['step']),
  flushSeconds:
    (register.getSingleMetric('fleet_ingest_flush_seconds') as Histogram) ??
    new Histogram({
      name: 'fleet_ingest_flush_seconds',
      help: 'Time to write a batch, signal its robots and acknowledge it',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    }),
};

/** `gps.lat: Too big` -> `gps`: one label value per top-level field keeps cardinality low. */
export function rejectedField(reason: string): string {
  const path = reason.split(':')[0];
  return path.split('.')[0].slice(0, 40) || 'payload';
}
