import { startProcessStack, type PieceName, type ProcessStack } from '../support/processes';
import { FleetLoad, auditFleet, behind, recovered, report, sleep, waitUntil } from './fleet-load';
import { apiClient, lidCycles, rollout } from './scenarios';

/**
 * `kill -9` of each piece of the backend, one at a time, while a simulated fleet sends heartbeats
 * and flips components, six robots go through lid cycles (PIN, UNLOCK_LID, open, close), a
 * Greengrass rollout is in its canary soak, and an API client reads and sends commands. The piece
 * is started again 3 s later. Afterwards nothing is lost or doubled: every robot's projection
 * holds its last heartbeat, every change raised its event once, the robot workflows agree with
 * the robots, every lid cycle and the rollout completed once, every command was sent once.
 */

let stack: ProcessStack;

beforeAll(async () => {
  // Commands outlive a worker's restart (a cold start bundles the workflows: seconds on a busy machine).
  // Wrong PINs are typed all along (one-shot entries that show a lost heartbeat): never lock the keypad.
  stack = await startProcessStack({ env: { COMMAND_TIMEOUT_SECONDS: '180', PIN_LOCKOUT_ATTEMPTS: '1000000' } });
}, 300_000);

afterAll(async () => {
  await stack?.stop();
});

const DOWN_MS = 3000;

async function killMidEverything(piece: PieceName): Promise<void> {
  const load = new FleetLoad(stack.mqttUrl, { robots: 30, hz: 2, flipEveryMs: 400, keypadEveryMs: 300, keypadRobots: 5, lidAfterUnlock: { openAfterMs: 1000, closeAfterMs: 3000 } });
  await load.start();
  try {
    await waitUntil('every robot in the projection', async () => (await behind(stack, new Map(load.serials.map((s) => [s, 1])))).length === 0, 60_000);
    const cycles = await lidCycles(stack, load, load.serials.slice(1, 7));
    const deployment = await rollout(stack, load.serials.slice(10, 15));
    const client = apiClient(stack, load, load.serials.slice(20, 24));
    await sleep(2500);

    const atKill = await inProgress(cycles.serials, deployment.deploymentId);
    await stack.kill(piece);
    await sleep(DOWN_MS);
    const restartedAt = Date.now();
    await stack.start(piece);
    const recoveryMs = await recovered(stack, load, restartedAt);

    await Promise.all([cycles.done(), deployment.done()]);
    await client.stop();
    await client.done();
    await load.quiesce();
    await waitUntil('projection caught up', async () => (await behind(stack, load.lastPublished())).length === 0, 60_000);
    await sleep(2000); // a doubled event would come now

    const problems = [...(await auditFleet(stack, load)), ...(await cycles.audit()), ...(await deployment.audit()), ...(await client.audit())];
    report({
      fault: `kill -9 of the ${pieceNames[piece]}, restarted ${DOWN_MS / 1000} s later`,
      load: `${load.description}, 6 lid cycles, a rollout in its soak, API reads and commands`,
      lost: problems.length === 0 ? 'nothing' : `${problems.length} problems`,
      recoverySeconds: recoveryMs / 1000,
      notes: `at the kill: ${atKill}; ${load.count} heartbeats; API client saw ${client.outages.length} failed requests, all refused or 503`,
    });
    expect(problems).toEqual([]);
    expect(stack.crashed()).toEqual([]);
  } finally {
    await load.stop();
  }
}

/** What was under way when the fault hit, for the report. */
async function inProgress(cycleSerials: string[], deploymentId: string): Promise<string> {
  const open = await stack.prisma.lidCycle.count({ where: { serialNumber: { in: cycleSerials }, status: 'INIT' } });
  const phase = (await stack.api(`/v1/deployments/${deploymentId}`)).body?.phase;
  return `${open} of ${cycleSerials.length} lid cycles open, rollout in ${phase}`;
}

const pieceNames: Record<PieceName, string> = { worker: 'workflow worker', ingest: 'ingest worker', api: 'API' };

test('kill -9 of the ingest worker mid-load, mid-lid-cycle and mid-rollout loses and doubles nothing', async () => {
  await killMidEverything('ingest');
});

test('kill -9 of the workflow worker mid-load, mid-lid-cycle and mid-rollout loses and doubles nothing', async () => {
  await killMidEverything('worker');
});

test('kill -9 of the API mid-load, mid-lid-cycle and mid-rollout loses and doubles nothing; retried commands are sent once', async () => {
  await killMidEverything('api');
});
