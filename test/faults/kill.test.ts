import { startProcessStack, type PieceName, type ProcessStack } from '../support/processes';
import { sleep } from './fleet-load';
import { runUnderFault } from './scenarios';

/**
 * `kill -9` of each piece of the backend, one at a time, while a simulated fleet sends heartbeats,
 * flips components and has wrong PINs typed, six robots go through lid cycles (PIN, UNLOCK_LID,
 * open, close), a Greengrass rollout is in its canary soak, and an API client reads and sends
 * commands. The piece is started again 3 s later. Afterwards nothing is lost or doubled (see
 * scenarios.ts `runUnderFault`).
 */

let stack: ProcessStack;

beforeAll(async () => {
  // Commands outlive a worker's restart (a cold start bundles the workflows: seconds on a busy
  // machine); wrong PINs are typed all along, so the keypad must never lock.
  stack = await startProcessStack({ env: { COMMAND_TIMEOUT_SECONDS: '180', PIN_LOCKOUT_ATTEMPTS: '1000000' } });
}, 300_000);

afterAll(async () => {
  await stack?.stop();
});

const DOWN_MS = 3000;
const names: Partial<Record<PieceName, string>> = { worker: 'workflow worker', ingest: 'ingest worker', api: 'API' };

async function killAndRestart(piece: PieceName): Promise<void> {
  let startMs = 0;
  await runUnderFault(stack, {
    fault: `kill -9 of the ${names[piece]}, started again ${DOWN_MS / 1000} s later`,
    inject: async () => {
      await stack.kill(piece);
      await sleep(DOWN_MS);
      const restartedAt = Date.now();
      await stack.start(piece);
      startMs = Date.now() - restartedAt;
      return restartedAt;
    },
    during: () => ({ problems: [], notes: [`the new process served after ${(startMs / 1000).toFixed(1)} s`] }),
  });
}

test('kill -9 of the ingest worker mid-load, mid-lid-cycle and mid-rollout loses and doubles nothing', async () => {
  await killAndRestart('ingest');
});

test('kill -9 of the workflow worker mid-load, mid-lid-cycle and mid-rollout loses and doubles nothing', async () => {
  await killAndRestart('worker');
});

test('kill -9 of the API mid-load, mid-lid-cycle and mid-rollout loses and doubles nothing; retried commands are sent once', async () => {
  await killAndRestart('api');
});
