import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { findTemporalCli, buildTemporalCli, waitForTemporal, type RunningTemporal } from './temporal-server';

/**
 * `TEMPORAL_SERVER=postgres`: a real Temporal server (all four services in one process) on the
 * project's PostgreSQL instead of the CLI's dev server on SQLite, with the Temporal Web UI server
 * beside it. Binaries are built once from the Go module proxy into .tools/ (git-ignored); the
 * configuration is infra/temporal-postgres/ (server.yaml explains its choices, history shards
 * above all). The databases `temporal` and `temporal_visibility` are created and migrated with the
 * server's own `sql` tool, the `default` namespace and the contract's search attributes registered
 * with the CLI: every step is safe to run again, so each start does them all.
 */

export const TEMPORAL_SERVER_MODULES = {
  server: 'go.temporal.io/server/cmd/server@v1.31.2',
  sql: 'go.temporal.io/server/cmd/tools/sql@v1.31.2',
  // The newest UI server whose go.mod this machine's Go (1.26.8) installs.
  ui: 'github.com/temporalio/ui-server/v2/cmd/server@v2.55.0',
} as const;

const root = resolve(__dirname, '..');
const configDir = join(root, 'infra', 'temporal-postgres');
const toolsDir = join(root, '.tools', 'temporal-postgres');

type Binary = keyof typeof TEMPORAL_SERVER_MODULES;

/** Each module into a folder of its own: the server's and the UI's binaries are both named `server`. */
export function temporalPostgresBinary(name: Binary, log: (line: string) => void = console.log): string {
  const dir = join(toolsDir, name);
  const file = join(dir, name === 'sql' ? 'sql' : 'server');
  if (existsSync(file)) return file;
  log(`Building ${TEMPORAL_SERVER_MODULES[name]} into ${dir}; the first build takes a few minutes...`);
  mkdirSync(dir, { recursive: true });
  const result = spawnSync('go', ['install', TEMPORAL_SERVER_MODULES[name]], { env: { ...process.env, GOBIN: dir, GOTOOLCHAIN: 'local' }, stdio: ['ignore', 'inherit', 'inherit'] });
  if (result.status !== 0) throw new Error(`go install ${TEMPORAL_SERVER_MODULES[name]} failed (is Go installed?)`);
  return file;
}

export type TemporalOnPostgresOptions = {
  /** A PostgreSQL role that may create databases (the embedded server's `postgres`). */
  adminUrl: string;
  port: number;
  uiPort: number;
  /** Where logs and the pid files go. */
  dataDir: string;
  namespace?: string;
  numHistoryShards?: number;
};

export async function startTemporalOnPostgres(opts: TemporalOnPostgresOptions): Promise<RunningTemporal> {
  const [server, sql, ui] = (['server', 'sql', 'ui'] as const).map((b) => temporalPostgresBinary(b));
  const cli = findTemporalCli() ?? buildTemporalCli();
  const namespace = opts.namespace ?? 'default';
  const db = new URL(opts.adminUrl);
  const pg = { host: db.hostname, port: db.port || '5432', user: decodeURIComponent(db.username), password: decodeURIComponent(db.password) };
  mkdirSync(opts.dataDir, { recursive: true });
  migrateTemporalDatabases(sql, pg, join(opts.dataDir, 'temporal-schema.log'));

  const address = `127.0.0.1:${opts.port}`;
  const env = {
    ...process.env,
    TEMPORAL_PG_HOST: pg.host,
    TEMPORAL_PG_PORT: pg.port,
    TEMPORAL_PG_USER: pg.user,
    TEMPORAL_PG_PASSWORD: pg.password,
    TEMPORAL_FRONTEND_PORT: String(opts.port),
    TEMPORAL_NUM_HISTORY_SHARDS: String(opts.numHistoryShards ?? 4),
    TEMPORAL_LOG_LEVEL: 'warn',
    TEMPORAL_DYNAMIC_CONFIG_FILE: join(configDir, 'dynamic-config.yaml'),
  };
  const serverProcess = await launch('Temporal server', server, ['--config-file', join(configDir, 'server.yaml'), '--allow-no-auth', 'start'], env, join(opts.dataDir, 'temporal-server.pid'));
  try {
    // A fresh server answers before its namespaces are usable: each step is retried until it takes.
    await retried(() => operator(cli, address, ['namespace', 'create', '-n', namespace, '--retention', '72h'], /already (exists|registered)/i));
    await waitForTemporal(address, serverProcess, () => '', namespace);
    for (const [name, type] of [['RobotSerial', 'Keyword'], ['FleetStatus', 'Keyword'], ['Online', 'Bool']]) {
      await retried(() => operator(cli, address, ['search-attribute', 'create', '-n', namespace, '--name', name, '--type', type], /already (exists|registered)/i));
    }
    const uiProcess = await launch('Temporal UI', ui, ['--root', configDir, '--config', 'ui', '--env', 'ui', 'start'], { ...process.env, TEMPORAL_ADDRESS: address, TEMPORAL_UI_PORT: String(opts.uiPort) }, join(opts.dataDir, 'temporal-ui.pid'));
    const uiUrl = `http://127.0.0.1:${opts.uiPort}`;
    await retried(async () => {
      if (!(await fetch(uiUrl)).ok) throw new Error(`the Temporal UI on ${uiUrl} does not answer yet`);
    });
    return {
      address,
      uiUrl,
      process: serverProcess,
      stop: async () => {
        await stopProcess(uiProcess);
        await stopProcess(serverProcess);
      },
    };
  } catch (error) {
    await stopProcess(serverProcess);
    throw error;
  }
}

type PgAccess = { host: string; port: string; user: string; password: string };

/** Creates and migrates both databases with the schemas built into the `sql` tool; a no-op once done. */
function migrateTemporalDatabases(sql: string, pg: PgAccess, logFile: string): void {
  const env = { ...process.env, SQL_PLUGIN: 'postgres12', SQL_HOST: pg.host, SQL_PORT: pg.port, SQL_USER: pg.user, SQL_PASSWORD: pg.password };
  let log = '';
  const run = (args: string[], mayFail = false) => {
    const result = spawnSync(sql, args, { env, encoding: 'utf8' });
    log += `$ sql ${args.join(' ')}\n${result.stdout}${result.stderr}\n`;
    if (result.status !== 0 && !mayFail) {
      writeFileSync(logFile, log);
      throw new Error(`Temporal schema: sql ${args.join(' ')} failed (see ${logFile}): ${(result.stderr || result.stdout).trim().split('\n').pop()}`);
    }
  };
  for (const [database, schema] of [['temporal', 'temporal'], ['temporal_visibility', 'visibility']]) {
    run(['--db', database, 'create'], true); // fails when it exists
    run(['--db', database, 'setup-schema', '-v', '0.0']);
    run(['--db', database, 'update-schema', '--schema-name', `postgresql/v12/${schema}`]);
  }
  writeFileSync(logFile, log);
}

async function operator(cli: string, address: string, args: string[], done: RegExp): Promise<void> {
  const result = spawnSync(cli, ['operator', ...args, '--address', address], { encoding: 'utf8' });
  if (result.status === 0 || done.test(`${result.stdout}${result.stderr}`)) return;
  throw new Error(`temporal operator ${args.join(' ')}: ${(result.stderr || result.stdout).trim()}`);
}

async function retried(step: () => Promise<void>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await step();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

/** In a process group of its own (a Ctrl-C meant for us must not stop it first); a leftover of a killed parent is stopped. */
async function launch(name: string, command: string, args: string[], env: NodeJS.ProcessEnv, pidFile: string): Promise<ChildProcess> {
  await stopLeftover(pidFile, command);
  const child = spawn(command, args, { env, stdio: ['ignore', 'ignore', 'pipe'], detached: true });
  let tail = '';
  child.stderr?.on('data', (chunk: Buffer) => (tail = (tail + chunk).slice(-4000)));
  const stopOnExit = () => child.kill('SIGTERM');
  process.once('exit', stopOnExit);
  child.once('exit', () => process.removeListener('exit', stopOnExit));
  if (child.pid) writeFileSync(pidFile, String(child.pid));
  await new Promise((r) => setTimeout(r, 200));
  if (child.exitCode !== null) throw new Error(`${name} exited (${child.exitCode}): ${tail}`);
  return child;
}

async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
  await exited;
  clearTimeout(timer);
}

async function stopLeftover(pidFile: string, command: string): Promise<void> {
  if (!existsSync(pidFile)) return;
  const pid = Number(readFileSync(pidFile, 'utf8'));
  const isOurs = () => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').startsWith(command);
    } catch {
      return false;
    }
  };
  if (!pid || !isOurs()) return;
  process.kill(pid, 'SIGTERM');
  for (let i = 0; i < 150 && isOurs(); i++) await new Promise((r) => setTimeout(r, 100));
}
