import { fork } from 'node:child_process';
import { join } from 'node:path';
import { repoRoot, startStack } from './stack';

async function main() {
  const stack = await startStack({ mode: 'designed', dir: join(repoRoot, '.data', 'bench-dbg'), offlineAfterSeconds: 60, env: { LOG_LEVEL: 'warn' } });
  const gen = fork(join(__dirname, 'load-generator.ts'), [], { execArgv: ['--import', 'tsx'], cwd: repoRoot });
  gen.send({ mqttUrl: stack.mqttUrl, robots: 2000, rate: 1, durationSeconds: 40, prefix: 'BENCH', sampleSize: 100, silentShare: 0, offlineAfterSeconds: 60, connectPerSecond: 100 });
  const timer = setInterval(async () => {
    const m = await (await fetch(stack.ingestMetricsUrl)).text();
    const flush = m.split('\n').filter((l) => /^fleet_ingest_(flush_seconds_(sum|count)|heartbeats|retries|workflow)/.test(l));
    console.log(new Date().toISOString().slice(11, 19), flush.join(' '));
  }, 2000);
  await new Promise((r) => gen.on('message', (m: any) => m.type === 'result' && r(m)));
  clearInterval(timer);
  console.log(stack.output("ingest worker").slice(-3000));
  await stack.stop();
  process.exit(0);
}
main();
