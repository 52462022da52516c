import { findMosquitto, startProcessStack, type PieceName, type ProcessStack } from '../support/processes';
import { sleep } from './fleet-load';
import { runUnderFault } from './scenarios';

/**
 * Several ingest workers (docs/operations.md, "Ingest at scale"): three on a Mosquitto shared subscription, and
 * two on the SQS queue an IoT Rule fills (a local SQS-compatible server and a stand-in for the
 * rule). Under the fault suite's load, with lid cycles, PIN entries, component faults and silent
 * robots, `kill -9` of one of them, started again 3 s later: the audit finds every heartbeat
 * stored and every event once, as with one worker (kill.test.ts).
 */

const mosquitto = findMosquitto();
const withMosquitto = mosquitto ? describe : describe.skip;
if (!mosquitto) console.warn('test/faults/ingest-scale.test.ts: Mosquitto is not installed (scripts/mosquitto.sh), so the shared-subscription runs are skipped.');

const DOWN_MS = 3000;
const baseEnv = { COMMAND_TIMEOUT_SECONDS: '180', PIN_LOCKOUT_ATTEMPTS: '1000000' };

async function killOneAndRestart(stack: ProcessStack, piece: PieceName, fault: string): Promise<void> {
  let startMs = 0;
  await runUnderFault(stack, {
    fault,
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

withMosquitto('three ingest workers on a shared subscription', () => {
  let stack: ProcessStack;
  beforeAll(async () => {
    stack = await startProcessStack({ broker: 'mosquitto', ingests: 3, env: baseEnv });
  }, 600_000);
  afterAll(async () => {
    await stack?.stop();
  });

  test('three ingest workers split the load and lose or double nothing', async () => {
    await runUnderFault(stack, { fault: 'none: three ingest workers on a Mosquitto shared subscription', inject: async () => Date.now() });
  });

  test('kill -9 of one of three ingest workers mid-load, started again 3 s later, loses and doubles nothing', async () => {
    await killOneAndRestart(stack, 'ingest-2', `kill -9 of one of three ingest workers (Mosquitto shared subscription), started again ${DOWN_MS / 1000} s later`);
  });
});

describe('two ingest workers on SQS', () => {
  let stack: ProcessStack;
  beforeAll(async () => {
    stack = await startProcessStack({ source: 'sqs', ingests: 2, env: baseEnv });
  }, 600_000);
  afterAll(async () => {
    await stack?.stop();
  });

  test('kill -9 of one of two SQS ingest workers mid-load, started again 3 s later, loses and doubles nothing', async () => {
    await killOneAndRestart(stack, 'ingest', `kill -9 of one of two ingest workers on SQS, started again ${DOWN_MS / 1000} s later (visibility timeout 30 s)`);
  });
});
