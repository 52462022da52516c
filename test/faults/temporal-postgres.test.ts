import { startProcessStack, type ProcessStack } from '../support/processes';
import { sleep } from './fleet-load';
import { runUnderFault } from './scenarios';

/**
 * The backend on a real Temporal server on PostgreSQL (TEMPORAL_SERVER=postgres,
 * infra/temporal-postgres.ts) with two workflow workers on the task queue: `kill -9` of one
 * worker, which is not started again (the other takes its workflows over), and `kill -9` of the
 * Temporal server itself, started again on its databases. Same load and audit as kill.test.ts.
 */

let stack: ProcessStack;

beforeAll(async () => {
  stack = await startProcessStack({ temporal: 'postgres', workers: 2, env: { COMMAND_TIMEOUT_SECONDS: '180', PIN_LOCKOUT_ATTEMPTS: '1000000' } });
}, 600_000);

afterAll(async () => {
  await stack?.stop();
});

test('two workers on a Temporal server on PostgreSQL: kill -9 of one mid-load loses and doubles nothing, the other takes over', async () => {
  await runUnderFault(stack, {
    fault: 'kill -9 of one of two workflow workers (not restarted), Temporal on PostgreSQL',
    inject: async () => {
      await stack.kill('worker');
      return Date.now();
    },
  });
  await stack.start('worker');
});

test('kill -9 of the Temporal server on PostgreSQL mid-load, started again 10 s later, loses and doubles nothing', async () => {
  let startMs = 0;
  await runUnderFault(stack, {
    fault: 'kill -9 of the Temporal server on PostgreSQL, started again 10 s later (two workers)',
    inject: async () => {
      await stack.killTemporal();
      await sleep(10_000);
      const restartedAt = Date.now();
      await stack.startTemporal();
      startMs = Date.now() - restartedAt;
      return restartedAt;
    },
    during: () => ({ problems: [], notes: [`the server answered ${(startMs / 1000).toFixed(1)} s after its start`] }),
  });
});
