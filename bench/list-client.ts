import { monitorEventLoopDelay } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * The benchmark's fleet-list client, in a process of its own (bench/run.ts ListLatency), so that no
 * answer waits for the benchmark's own work (freshness and inbox polls, figures) before it is timed.
 * Requests `url` one after another, `everyMs` after each answer, and sends `{ at, ms }` for each
 * (`ms` null for a failure); "from" and "to" bracket the window its own event-loop delay is read
 * over, sent on "to"; "stop" ends it.
 */

export type ListClientStart = { url: string; apiKey: string; everyMs: number };
export type ListClientMessage =
  | { type: 'request'; at: number; ms: number | null }
  | { type: 'loopDelay'; p50: number; p99: number; max: number };

const loopDelay = monitorEventLoopDelay({ resolution: 10 });
const ms = (ns: number) => Math.round(ns / 1e5) / 10;
let running = true;

// The benchmark ended without stopping it (it failed): nothing to report to.
process.once('disconnect', () => process.exit(0));

async function requestLoop({ url, apiKey, everyMs }: ListClientStart): Promise<void> {
  while (running) {
    const at = Date.now();
    const started = performance.now();
    const ok = await fetch(url, { headers: { 'x-api-key': apiKey }, signal: AbortSignal.timeout(10_000) })
      .then(async (res) => (await res.arrayBuffer(), res.ok))
      .catch(() => false);
    process.send!({ type: 'request', at, ms: ok ? performance.now() - started : null } satisfies ListClientMessage);
    await sleep(everyMs);
  }
}

process.once('message', (start: ListClientStart) => {
  const done = requestLoop(start);
  process.on('message', (message) => {
    if (message === 'from') {
      loopDelay.reset();
      loopDelay.enable();
    } else if (message === 'to') {
      loopDelay.disable();
      process.send!({ type: 'loopDelay', p50: ms(loopDelay.percentile(50)), p99: ms(loopDelay.percentile(99)), max: ms(loopDelay.max) } satisfies ListClientMessage);
    } else if (message === 'stop') {
      running = false;
      void done.then(() => process.disconnect());
    }
  });
});
