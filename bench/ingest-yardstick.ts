import pino from 'pino';
import { Connection } from '@temporalio/client';
import { heartbeatRules, loadConfig } from '../config';
import type { Heartbeat } from '../domain/heartbeat';
import { lidSettings } from '../domain/lid';
import { storeHeartbeats } from '../store/devices';
import { storeRejected } from '../store/rejected-messages';
import { connectTemporal, createTemporalClient } from '../clients/connection';
import { createPrisma } from '../infra/prisma';
import { connectIngest } from '../ingest/mqtt-ingest';
import { mapLimit } from '../ingest/map-limit';
import { signalHeartbeats } from '../clients/robots';
import { ingestMetrics } from '../ingest/metrics';
import { ingestPipeline, serveMetrics, startSilenceSweeper } from '../workers/ingest';

/**
 * The benchmark's two yardsticks (docs/performance.md), built from the ingest worker's pieces:
 * `naive` writes and signals every heartbeat one by one (the State Service's shape in seed 000);
 * `floor` writes batches and never signals, the most this machine ingests without Temporal.
 * `node --import tsx bench/ingest-yardstick.ts naive|floor`, with the ingest worker's environment.
 */

export const yardsticks = ['naive', 'floor'] as const;
export type Yardstick = (typeof yardsticks)[number];

// naive: signal latency, not CPU, bounds the batch; more lanes help while Temporal keeps up.
const NAIVE_LANES = 64;

async function main(): Promise<void> {
  const yardstick = process.argv[2] as Yardstick;
  if (!yardsticks.includes(yardstick)) throw new Error(`usage: bench/ingest-yardstick.ts ${yardsticks.join('|')}`);
  const config = loadConfig();
  if (!config.DATABASE_URL || !config.MQTT_URL) throw new Error('DATABASE_URL and MQTT_URL are required');
  const log = pino({ level: config.LOG_LEVEL });
  const prisma = createPrisma(config.DATABASE_URL);
  const rules = heartbeatRules(config);
  const temporal = createTemporalClient(yardstick === 'floor' ? Connection.lazy() : await connectTemporal(config), config.TEMPORAL_NAMESPACE);
  const start = { offlineAfterMs: config.OFFLINE_AFTER_SECONDS * 1000, lid: lidSettings(config) };
  const signal = (serial: string, heartbeats: Heartbeat[]) => signalHeartbeats(temporal, start, serial, heartbeats);
  const pipeline = ingestPipeline(config, log, {
    storeRejected: (rejected) => storeRejected(prisma, rejected),
    storeHeartbeats:
      yardstick === 'floor'
        ? async (heartbeats) => {
            await storeHeartbeats(prisma, heartbeats, rules, { inbox: false });
            return { forwarded: 0 };
          }
        : async (heartbeats) => {
            await mapLimit(heartbeats, NAIVE_LANES, async (hb) => {
              const [placed] = (await storeHeartbeats(prisma, [hb], rules, { inbox: false })).placed;
              await signal(hb.serial, [placed]);
            });
            ingestMetrics.signals.inc(heartbeats.length);
            return { forwarded: heartbeats.length };
          },
  });
  const sweeper = yardstick === 'naive' ? startSilenceSweeper(prisma, temporal, config, log) : null;
  const mqtt = await connectIngest({ mqttUrl: config.MQTT_URL, clientId: 'fleet-ingest', pipeline, onError: (e) => log.warn({ err: e.message }, 'mqtt error') });
  if (config.INGEST_METRICS_PORT !== undefined) serveMetrics(config.INGEST_METRICS_PORT);
  const shutdown = async () => {
    await pipeline.close();
    await mqtt.close();
    await sweeper?.stop();
    process.exit(0);
  };
  process.once('SIGINT', () => void shutdown());
  process.once('SIGTERM', () => void shutdown());
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
