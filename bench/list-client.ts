import { monitorEventLoopDelay } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * The benchmark's fleet-list client, in a process of its own (bench/run.ts ListLatency), so that no
 * answer waits for the benchmark's own work (freshness and inbox polls, figures) before it is timed.
 * Requests `url` one after another, `everyMs` after each answer, and sends `{ at, ms }` for each
 * (`ms` null for a failure). "from" and "to" mark the hold: at the next pause between requests it
 * reads `metricsUrl` (the API's request histogram; read while a timed request was in flight, it
 * made that request one of the hold's slowest) and sends the text, and its own event-loop delay
 * over the hold goes with "to"'s. "stop" ends it.
 */

export type ListClientStart = { url: string; metricsUrl: string; apiKey: string; everyMs: number };
export type ListClientMark = { type: 'mark'; edge: Edge; metrics: string | null; loopDelay: { p50: number; p99: number; max: number } | null };
export type ListClientMessage = { type: 'request'; at: number; ms: number | null } | ListClientMark;
export type Edge = 'from' | 'to';

const loopDelay = monitorEventLoopDelay({ resolution: 10 });
const ms = (ns: number) => Math.round(ns / 1e5) / 10;
const marks: Edge[] = [];
let running = true;

// The benchmark ended without stopping it (it failed): nothing to report to.
process.once('disconnect', () => process.exit(0));

async function timedRequest(url: string, apiKey: string): Promise<void> {
  const at = Date.now();
  const started = performance.now();
  const ok = await fetch(url, { headers: { 'x-api-key': apiKey }, signal: AbortSignal.timeout(10_000) })
    .then(async (res) => (await res.arrayBuffer(), res.ok))
    .catch(() => false);
  process.send!({ type: 'request', at, ms: ok ? performance.now() - started : null } satisfies ListClientMessage);
}

async function mark(edge: Edge, metricsUrl: string): Promise<void> {
  const metrics = await fetch(metricsUrl, { signal: AbortSignal.timeout(10_000) })
    .then((res) => (res.ok ? res.text() : null))
    .catch(() => null);
  if (edge === 'from') {
    loopDelay.reset();
    loopDelay.enable();
  } else loopDelay.disable();
  const delay = edge === 'to' ? { p50: ms(loopDelay.percentile(50)), p99: ms(loopDelay.percentile(99)), max: ms(loopDelay.max) } : null;
  process.send!({ type: 'mark', edge, metrics, loopDelay: delay } satisfies ListClientMessage);
}

async function requestLoop({ url, metricsUrl, apiKey, everyMs }: ListClientStart): Promise<void> {
  const markPending = async () => {
    for (let edge = marks.shift(); edge; edge = marks.shift()) await mark(edge, metricsUrl);
  };
  while (running) {
    await timedRequest(url, apiKey);
    await markPending();
    await sleep(everyMs);
  }
  await markPending();
}

process.once('message', (start: ListClientStart) => {
  const done = requestLoop(start);
  process.on('message', (message) => {
    if (message === 'from' || message === 'to') marks.push(message);
    else if (message === 'stop') {
      running = false;
      void done.then(() => process.disconnect());
    }
  });
});
