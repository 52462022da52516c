import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { freePort } from '../infra/ports';
import { eventually } from './support/fleet';

/**
 * `npm start` stopped as a terminal stops it: the signal goes to its whole foreground process group
 * (npm, the shell, node, and `tee` when the output is piped). Everything it started must stop, the
 * data folder must be left consistent, and the next start must find its state.
 */

const repoRoot = resolve(__dirname, '..');
let dataDir: string;
let env: NodeJS.ProcessEnv;

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'fleet-start-stop-'));
  const [temporal, ui, postgres, mqtt, api, greengrass] = await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort(), freePort()]);
  env = {
    ...process.env,
    DATA_DIR: dataDir,
    TEMPORAL_PORT: String(temporal),
    TEMPORAL_UI_PORT: String(ui),
    EMBEDDED_POSTGRES_PORT: String(postgres),
    MQTT_PORT: String(mqtt),
    PORT: String(api),
    GREENGRASS_LOCAL_PORT: String(greengrass),
    SIM_ROBOTS: '1',
    LOG_LEVEL: 'warn',
  };
  // The test stack's own servers must not be taken for this one's.
  for (const name of ['DATABASE_URL', 'TEMPORAL_ADDRESS', 'MQTT_URL', 'AMQP_URL', 'API_KEYS', 'TEST_WORKFLOW_BUNDLE']) delete env[name];
});

afterAll(() => {
  for (const pid of processesUsing(dataDir)) process.kill(pid, 'SIGKILL');
  rmSync(dataDir, { recursive: true, force: true });
});

/** `npm start` in a process group of its own, as a shell runs a foreground job. */
function startInGroup(command: string): { child: ChildProcess; output: () => string } {
  const child = spawn('bash', ['-c', command], { cwd: repoRoot, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (output += c.toString()));
  return { child, output: () => output };
}

async function untilUp(run: { child: ChildProcess; output: () => string }): Promise<void> {
  await eventually(
    () => {
      if (run.child.exitCode !== null) throw new Error(`npm start exited (${run.child.exitCode}): ${run.output().slice(-2000)}`);
      expect(run.output()).toContain('Fleet backend is up');
    },
    180_000,
    250,
  );
}

/** Sends `signal` to the whole group, as a terminal does, and waits until no process of it is left. */
async function stopGroup(run: { child: ChildProcess }, signal: NodeJS.Signals): Promise<void> {
  process.kill(-run.child.pid!, signal);
  await eventually(() => expect(groupAlive(run.child.pid!)).toBe(false), 60_000, 200);
}

function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Processes whose command line names the data folder: the servers npm start runs on it. */
function processesUsing(dir: string): number[] {
  return readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        return readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(dir);
      } catch {
        return false;
      }
    })
    .map(Number);
}

async function expectEverythingStopped(): Promise<void> {
  // A server in a process group of its own outlives the group: it must have been stopped too.
  await eventually(() => expect(processesUsing(dataDir)).toEqual([]), 30_000, 250);
  expect(existsSync(join(dataDir, 'postgres', 'postmaster.pid'))).toBe(false);
  const refused = await fetch(`http://127.0.0.1:${env.PORT}/healthz`).then(
    () => false,
    () => true,
  );
  expect(refused).toBe(true);
}

async function simulatedRobotKnown(): Promise<void> {
  const key = readFileSync(join(dataDir, 'dev-api-key'), 'utf8').trim();
  await eventually(async () => {
    const res = await fetch(`http://127.0.0.1:${env.PORT}/v1/devices/SIM0001`, { headers: { 'x-api-key': key } });
    expect(res.status).toBe(200);
  }, 30_000);
}

test('Ctrl-C with the output piped through tee stops every server npm start started', async () => {
  const run = startInGroup(`npm start 2>&1 | tee ${join(dataDir, 'start.log')}`);
  await untilUp(run);
  await simulatedRobotKnown();
  await stopGroup(run, 'SIGINT');
  await expectEverythingStopped();
}, 300_000);

test('SIGTERM stops everything and says so; the next start finds the data as it was left', async () => {
  const first = startInGroup('npm start');
  await untilUp(first);
  await stopGroup(first, 'SIGTERM');
  expect(first.output()).toMatch(/Stopping\.\.\.[\s\S]*Stopped\.\s*$/);
  await expectEverythingStopped();

  const again = startInGroup('npm start');
  await untilUp(again);
  await simulatedRobotKnown();
  await stopGroup(again, 'SIGINT');
  expect(again.output()).toMatch(/Stopped\.\s*$/);
  await expectEverythingStopped();
}, 400_000);
