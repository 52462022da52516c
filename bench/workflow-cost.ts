import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import type { Heartbeat } from '../domain/heartbeat';
import { signalHeartbeats } from '../clients/robots';
import { defaultLidSettings } from '../domain/lid';
import { sampleTrees } from './proc';
import { repoRoot, startStack } from './stack';

/**
 * What robot workflows cost the Temporal dev server and the robot worker, without MQTT or the
 * ingest in the way: on a fresh designed-mode stack, N robot workflows are started by
 * signal-with-start, then left alone (their offline deadlines fire after 60 s, and with no
 * heartbeats in the projection they go offline), then signalled at a steady pace. CPU of each
 * process from /proc, per 5 s window.
 *
 *   node --import tsx bench/workflow-cost.ts [robots=500]
 */

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const heartbeat = (serial: string, t: number): Heartbeat => ({ serial, timestamp: t, receivedAt: t, batteries: [], components: { GPS: 'OK' }, events: [] });

async function main(): Promise<void> {
  const robots = Number(process.argv[2] ?? 500);
  const stack = await startStack({ mode: 'designed', dir: join(repoRoot, '.data', `workflow-cost-${process.pid}`), offlineAfterSeconds: 60, env: { WORKFLOW_CACHE_SIZE: String(Math.max(2000, robots * 2)) } });
  try {
    const pids = { temporal: stack.pids['temporal server'], worker: stack.pids['robot worker'], postgres: stack.pids.postgres };
    const client = new Client({ connection: await Connection.connect({ address: stack.temporalAddress! }) });
    const signal = (serial: string, heartbeats: Heartbeat[]) => signalHeartbeats(client, { offlineAfterMs: 60_000, lid: defaultLidSettings }, serial, heartbeats);
    const window = async (label: string, seconds: number, work?: () => Promise<number>) => {
      const before = sampleTrees(pids);
      const started = Date.now();
      let signals = 0;
      while (Date.now() - started < seconds * 1000) signals += work ? await work() : (await sleep(250), 0);
      const after = sampleTrees(pids);
      const s = (Date.now() - started) / 1000;
      const cpu = Object.keys(pids).map((k) => `${k} ${((after[k].cpuMs - before[k].cpuMs) / 10 / s).toFixed(1)}%`).join(', ');
      console.log(`${label}: ${s.toFixed(0)} s, ${signals} signals: CPU of one core ${cpu}`);
    };
    await window('idle, no workflows', 10);
    const serials = Array.from({ length: robots }, (_, i) => `COST${String(i).padStart(5, '0')}`);
    const t = Date.now();
    for (let i = 0; i < serials.length; i += 50) await Promise.all(serials.slice(i, i + 50).map((s) => signal(s, [heartbeat(s, t)])));
    console.log(`${robots} signal-with-starts sent in ${Date.now() - t} ms`);
    for (let i = 0; i < 16; i++) await window(`+${i * 5} s`, 5);
    let next = 0;
    await window('signals to running workflows', 30, async () => {
      const batch = Array.from({ length: 10 }, () => serials[next++ % robots]);
      const now = Date.now();
      await Promise.all(batch.map((s) => signal(s, [heartbeat(s, now)])));
      await sleep(200);
      return batch.length;
    });
    await client.connection.close();
  } finally {
    await stack.stop();
  }
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
