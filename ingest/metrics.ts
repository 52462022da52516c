import { Counter, Histogram, register } from 'prom-client';

/** Ingest metrics in prom-client's default registry, which the API serves on /metrics. */

function counter(name: string, help: string, labelNames: string[] = []): Counter {
  return (register.getSingleMetric(name) as Counter) ?? new Counter({ name, help, labelNames });
}

export const ingestMetrics = {
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
