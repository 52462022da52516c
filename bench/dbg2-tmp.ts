import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { startTemporalDevServer } from '../infra/temporal-server';
import { createRobotSignaller } from '../ingest/signal-robot';
import { freePort } from '../test/support/ports';
import { repoRoot } from './stack';

async function trial(name: string, opts: { dbFile?: string; fast?: boolean }) {
  const t = await startTemporalDevServer({ port: await freePort(), ...opts });
  const client = new Client({ connection: await Connection.connect({ address: t.address }) });
  const signal = createRobotSignaller(client, { offlineAfterMs: 60000 });
  const hb = (serial: string) => ({ serial, timestamp: Date.now(), receivedAt: Date.now(), batteries: [], components: {}, events: [] });
  const out: string[] = [];
  for (const phase of ['start', 'signal']) {
    const serials = Array.from({ length: 600 }, (_, i) => `R${i}`);
    const started = Date.now();
    let next = 0;
    await Promise.all(Array.from({ length: 64 }, async () => { while (next < serials.length) { const s = serials[next++]; await signal(s, [hb(s)]); } }));
    out.push(`${phase} ${(600 / ((Date.now() - started) / 1000)).toFixed(0)}/s`);
  }
  console.log(name, out.join(' '), 'load', require('os').loadavg()[0].toFixed(1));
  await t.stop();
}
async function main() {
  for (let i = 0; i < 2; i++) {
    await trial('file+WAL+syncOFF', { dbFile: join(repoRoot, '.data', 'dbg2', `t${i}.db`), fast: true });
    await trial('memory          ', {});
  }
  process.exit(0);
}
main();
