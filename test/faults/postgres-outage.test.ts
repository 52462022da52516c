import { startProcessStack, type ProcessStack } from '../support/processes';
import { sleep } from './fleet-load';
import { runUnderFault } from './scenarios';

/**
 * PostgreSQL stopped for 30 s under load, with lid cycles under way. Meanwhile the API answers 503
 * UNAVAILABLE for what it cannot read (never a 500), activities and the ingest worker's writes
 * retry; afterwards the API answers again by itself, the projection catches up and nothing is
 * lost or doubled. (No rollout here: the local Greengrass service reads its devices from the
 * same database.)
 */

const DOWN_MS = 30_000;

let stack: ProcessStack;

beforeAll(async () => {
  stack = await startProcessStack({ env: { COMMAND_TIMEOUT_SECONDS: '180', PIN_LOCKOUT_ATTEMPTS: '1000000' } });
}, 300_000);

afterAll(async () => {
  await stack?.stop();
});

test('PostgreSQL down for 30 s: the API answers 503 and recovers by itself, activities retry, projections catch up, nothing lost', async () => {
  const problems: string[] = [];
  const seen = new Map<string, Set<number>>();
  let peakRss = 0;
  await runUnderFault(stack, {
    fault: `PostgreSQL stopped for ${DOWN_MS / 1000} s, then started again`,
    rollout: false,
    inject: async ({ load }) => {
      await stack.stopPostgres();
      const until = Date.now() + DOWN_MS;
      const serial = load.serials[5];
      const reads = [`/v1/devices/${serial}`, '/v1/devices?pageSize=5', `/v1/events?serial=${serial}`, `/v1/devices/${serial}/lid-cycles`, '/readyz'];
      while (Date.now() < until) {
        for (const path of reads) {
          const res = await stack.api(path);
          seen.set(path, (seen.get(path) ?? new Set()).add(res.status));
          if (res.status !== 503 || res.body?.error?.code !== 'UNAVAILABLE') problems.push(`GET ${path} while PostgreSQL is down: ${res.status} ${JSON.stringify(res.body).slice(0, 200)}`);
        }
        peakRss = Math.max(peakRss, stack.rssMb('ingest'));
        await sleep(1000);
      }
      const restartedAt = Date.now();
      await stack.startPostgres();
      return restartedAt;
    },
    during: () => ({
      problems: [...new Set(problems)],
      notes: [`while down: ${[...seen].map(([p, s]) => `${p.split('?')[0]} ${[...s].join('/')}`).join(', ')}`, `ingest RSS at most ${peakRss.toFixed(0)} MiB`],
    }),
  });
});
