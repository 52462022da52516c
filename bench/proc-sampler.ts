import { sampleTrees, type TreeShare, type TreeUsage } from './proc';

/**
 * The benchmark's process sampler, in a process of its own (bench/proc.ts ProcessSampler): reading
 * /proc, smaps_rollup of a GB-sized worker above all, takes 100 ms or more a sample on a busy
 * machine, and in the benchmark's own process that blocked the timing of its list requests and
 * freshness polls. Sends `{ at, usage }` every `everyMs`, and a last one on "stop".
 */

export type SamplerStart = { roots: Record<string, number>; everyMs: number; shares?: Record<string, TreeShare> };
export type Sample = { at: number; usage: Record<string, TreeUsage> };

// CPU every sample, memory every tenth: smaps_rollup of every process took 7 % of a core at 1 Hz.
const MEMORY_EVERY = 10;
let taken = 0;
const send = (roots: Record<string, number>, shares?: Record<string, TreeShare>) =>
  process.send!({ at: Date.now(), usage: sampleTrees(roots, taken++ % MEMORY_EVERY === 0, shares) } satisfies Sample);

// The benchmark ended without stopping it (it failed): nothing to report to.
process.once('disconnect', () => process.exit(0));

process.once('message', ({ roots, everyMs, shares }: SamplerStart) => {
  send(roots, shares);
  const timer = setInterval(() => send(roots, shares), everyMs);
  process.on('message', (message) => {
    if (message !== 'stop') return;
    clearInterval(timer);
    taken = 0;
    send(roots, shares);
    process.disconnect();
  });
});
