import { fork } from 'node:child_process';
import http from 'node:http';
import { join } from 'node:path';
import type { LoadMessage, LoadOptions } from './load-generator';
import { ProcessSampler, round } from './proc';
import { repoRoot, startStack } from './stack';

/**
 * What one client following the whole fleet on GET /v1/device-updates/stream costs the API
 * process: `robots` simulated robots at 1 Hz (bench/load-generator.ts) against a fresh stack
 * (bench/stack.ts), the API's CPU and memory over `seconds` with no stream open, then over
 * `seconds` with one client following every robot, which counts what it receives.
 *
 *   node --import tsx bench/device-update-stream.ts [robots=500] [seconds=60]
 */

const robots = Number(process.argv[2] ?? 500);
const seconds = Number(process.argv[3] ?? 60);
const log = (line: string) => console.log(`[${new Date().toISOString().slice(11, 19)}] ${line}`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The API's V8 heap and resident memory, from its /metrics (prom-client's default metrics). */
async function apiMemory(apiUrl: string): Promise<string> {
  const text = await (await fetch(`${apiUrl}/metrics`)).text();
  const mb = (name: string) => round(Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN) / 2 ** 20, 1);
  return `heap used ${mb('nodejs_heap_size_used_bytes')} MB of ${mb('nodejs_heap_size_total_bytes')} MB, RSS ${mb('process_resident_memory_bytes')} MB`;
}

/** Waits `ms`, logging the API's memory every 15 s. */
async function watch(apiUrl: string, ms: number): Promise<void> {
  for (const end = Date.now() + ms; Date.now() < end; ) {
    await sleep(Math.min(15_000, end - Date.now()));
    log(`  ${await apiMemory(apiUrl)}`);
  }
}

async function main(): Promise<void> {
  const stack = await startStack({ mode: 'designed', dir: join(repoRoot, '.data', `bench-updates-${process.pid}`), offlineAfterSeconds: 60, temporalNice: 10, temporalGogc: 400 });
  const sampler = new ProcessSampler({ api: stack.pids.api });
  const generator = fork(join(__dirname, 'load-generator.ts'), [], { execArgv: ['--import', 'tsx'], cwd: repoRoot, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  try {
    sampler.start();
    let holding = false;
    generator.on('message', (m: LoadMessage) => {
      if (m.type === 'stage' && m.edge === 'start') holding = true;
    });
    const load: LoadOptions = { mqttUrl: stack.mqttUrl, rate: 1, prefix: 'UPD', stages: [robots], holdSeconds: 2 * seconds + 60, settleSeconds: 20, sampleSize: 0, silentShare: 0, offlineAfterSeconds: 60, connectPerSecond: 100 };
    generator.send(load);
    while (!holding) await sleep(500);
    log(`${robots} robots at 1 Hz, holding`);

    const quietFrom = Date.now();
    await watch(stack.apiUrl, seconds * 1000);
    const quiet = sampler.between(quietFrom, Date.now()).api;
    log(`no stream:       API ${quiet.cpuPercent}% CPU, peak ${quiet.peakMemoryMb} MB PSS`);

    const received = { messages: 0, bytes: 0 };
    const request = http.get(`${stack.apiUrl}/v1/device-updates/stream`, { headers: { 'x-api-key': stack.apiKey } });
    request.on('response', (res) => {
      res.on('data', (chunk: Buffer) => {
        received.bytes += chunk.length;
        for (let i = chunk.indexOf('data: '); i >= 0; i = chunk.indexOf('data: ', i + 6)) received.messages++;
      });
    });
    await sleep(5000); // the feed's first reads
    const followFrom = Date.now();
    const before = { ...received };
    await watch(stack.apiUrl, seconds * 1000);
    const following = sampler.between(followFrom, Date.now()).api;
    const perSecond = (n: number) => round(n / seconds, 1);
    log(`one whole-fleet: API ${following.cpuPercent}% CPU, peak ${following.peakMemoryMb} MB PSS; received ${perSecond(received.messages - before.messages)} updates/s, ${round((received.bytes - before.bytes) / seconds / 1024, 1)} KiB/s`);
    log(`cost of the client: ${round(following.cpuPercent - quiet.cpuPercent, 1)} points of one core, ${round(following.peakMemoryMb - quiet.peakMemoryMb, 1)} MB`);
    request.destroy();
    const crashed = stack.crashed();
    if (crashed.length) log(`crashed: ${crashed.join('; ')}`);
  } finally {
    generator.send('stop');
    await sampler.stop();
    await stack.stop();
    generator.kill();
  }
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
