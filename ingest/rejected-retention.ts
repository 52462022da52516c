import type { Logger } from 'pino';

/**
 * Rejected robot messages are kept for inspection, not for ever: one robot with a firmware bug in
 * one field writes a row per heartbeat. Every `everyMs` (and once soon after start) this deletes
 * those older than `keepMs`. Any number of ingest workers may run it: a delete done twice is a no-op.
 */
export function startRejectedRetention(opts: { prune(before: Date): Promise<number>; keepMs: number; everyMs?: number; logger: Logger }): { stop(): Promise<void> } {
  const log = opts.logger.child({ component: 'rejected-retention' });
  let running: Promise<void> = Promise.resolve();
  const run = () => {
    running = opts
      .prune(new Date(Date.now() - opts.keepMs))
      .then((deleted) => {
        if (deleted > 0) log.info({ deleted }, 'rejected messages past their keeping time deleted');
      })
      .catch((error: Error) => log.warn({ err: error.message }, 'deleting old rejected messages failed; next round'));
  };
  const first = setTimeout(run, 60_000);
  const timer = setInterval(run, opts.everyMs ?? 3_600_000);
  first.unref();
  timer.unref();
  return {
    stop: async () => {
      clearTimeout(first);
      clearInterval(timer);
      await running;
    },
  };
}
