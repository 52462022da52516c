import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { freePort } from '../infra/ports';
import { eventually } from './support/fleet';

/**
 * docs/walkthroughs.md, run as written: every ```sh block, in order, in one bash session against a
 * fresh `npm start`, so the examples a newcomer tries cannot drift from what the system does.
 */

const repoRoot = resolve(__dirname, '..');

export function walkthroughScript(markdown: string): string {
  const blocks = [...markdown.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]);
  return ['set -euo pipefail', ...blocks.map((block, i) => `echo "== block ${i + 1} of ${blocks.length}"\n${block}`)].join('\n');
}

let dataDir: string;
let start: ChildProcess;
let output = '';
let env: NodeJS.ProcessEnv;

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'fleet-walkthroughs-'));
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
    LOG_LEVEL: 'warn',
  };
  for (const name of ['DATABASE_URL', 'TEMPORAL_ADDRESS', 'MQTT_URL', 'AMQP_URL', 'API_KEYS', 'SIM_ROBOTS', 'TEST_WORKFLOW_BUNDLE']) delete env[name];
  start = spawn('bash', ['-c', 'npm start'], { cwd: repoRoot, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  start.stdout!.on('data', (c: Buffer) => (output += c.toString()));
  start.stderr!.on('data', (c: Buffer) => (output += c.toString()));
  await eventually(
    () => {
      if (start.exitCode !== null) throw new Error(`npm start exited: ${output.slice(-2000)}`);
      expect(output).toContain('Fleet backend is up');
    },
    180_000,
    250,
  );
}, 240_000);

afterAll(async () => {
  if (start && start.exitCode === null) {
    const exited = new Promise((r) => start.once('exit', r));
    process.kill(-start.pid!, 'SIGINT');
    await exited;
  }
  rmSync(dataDir, { recursive: true, force: true });
}, 120_000);

test('every block of docs/walkthroughs.md runs as written against npm start', async () => {
  const script = walkthroughScript(readFileSync(join(repoRoot, 'docs', 'walkthroughs.md'), 'utf8'));
  // Its own process group, so that whatever a block leaves running in the background goes with it.
  const run = spawn('bash', ['-c', script], {
    cwd: repoRoot,
    env: { ...env, API: `http://127.0.0.1:${env.PORT}`, GG: `http://127.0.0.1:${env.GREENGRASS_LOCAL_PORT}` },
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let shown = '';
  run.stdout!.on('data', (c: Buffer) => (shown += c.toString()));
  run.stderr!.on('data', (c: Buffer) => (shown += c.toString()));
  const status = await new Promise<number | null>((r) => run.once('exit', r));
  try {
    process.kill(-run.pid!, 'SIGKILL');
  } catch {
    // the group is gone already
  }
  expect({ status, output: status === 0 ? '' : shown.slice(-6000) }).toEqual({ status: 0, output: '' });
}, 1_500_000);
