import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { delimiter, join, resolve } from 'node:path';
import { servesNamespace } from '../clients/connection';
import { searchAttributeFlags } from '../temporal.config';

/**
 * The Temporal dev server (`temporal server start-dev`), from the CLI on PATH, TEMPORAL_CLI_PATH,
 * or built once from the Go module proxy into .tools/bin (its download host is out of reach).
 */

export const TEMPORAL_CLI_MODULE = 'github.com/temporalio/cli/cmd/temporal@v1.5.1';
const toolsDir = resolve(__dirname, '..', '.tools', 'bin');

export type RunningTemporal = { address: string; uiUrl: string | null; process: ChildProcess; stop(): Promise<void> };

/** `command args`, or the same under `nice -n N` (N > 0): every thread the process starts inherits it. */
export function niced(command: string, args: string[], nice?: number): [string, string[]] {
  return nice ? ['nice', ['-n', String(nice), command, ...args]] : [command, args];
}

export function findTemporalCli(explicit?: string): string | undefined {
  if (explicit) return explicit;
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir && existsSync(join(dir, 'temporal'))) return join(dir, 'temporal');
  }
  return existsSync(join(toolsDir, 'temporal')) ? join(toolsDir, 'temporal') : undefined;
}

export function buildTemporalCli(log: (line: string) => void = console.log): string {
  log(`Building the Temporal CLI (${TEMPORAL_CLI_MODULE}) into .tools/bin; the first build takes a few minutes...`);
  mkdirSync(toolsDir, { recursive: true });
  const result = spawnSync('go', ['install', TEMPORAL_CLI_MODULE], {
    env: { ...process.env, GOBIN: toolsDir },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  if (result.status !== 0) throw new Error(`go install ${TEMPORAL_CLI_MODULE} failed (is Go installed?)`);
  return join(toolsDir, 'temporal');
}

export async function startTemporalDevServer(opts: {
  cliPath?: string;
  port: number;
  uiPort?: number;
  dbFile?: string;
  dynamicConfig?: Record<string, unknown>;
  fast?: boolean;
  /** Run it at this CPU niceness (Linux `nice`): on a machine it shares, the ingest path goes first. */
  nice?: number;
  /** Go's GOGC for the server: a larger value trades memory for less garbage-collection CPU. */
  gogc?: number;
}): Promise<RunningTemporal> {
  const cli = findTemporalCli(opts.cliPath) ?? buildTemporalCli();
  if (opts.dbFile) mkdirSync(resolve(opts.dbFile, '..'), { recursive: true });
  const args = ['server', 'start-dev', '--ip', '127.0.0.1', '--port', String(opts.port), '--log-level', 'error'];
  if (opts.uiPort) args.push('--ui-port', String(opts.uiPort));
  else args.push('--headless');
  if (opts.dbFile) args.push('--db-filename', opts.dbFile);
  for (const flag of searchAttributeFlags) args.push('--search-attribute', flag);
  for (const [key, value] of Object.entries(opts.dynamicConfig ?? {})) args.push('--dynamic-config-value', `${key}=${JSON.stringify(value)}`);
  // What the SDK's own CI uses: much faster, and a lost write only matters on power loss.
  if (opts.fast) args.push('--sqlite-pragma', 'journal_mode=WAL', '--sqlite-pragma', 'synchronous=OFF');
  if (opts.dbFile) await stopLeftoverServer(`${opts.dbFile}.pid`);
  const [command, commandArgs] = niced(cli, args, opts.nice);
  const env = opts.gogc ? { ...process.env, GOGC: String(opts.gogc) } : process.env;
  try {
    return await launch(command, commandArgs, env, opts);
  } catch (error) {
    // Once in a CI run the server panicked while wiring itself up on restart, and not on the next try.
    if (!(error instanceof TemporalExited)) throw error;
    console.warn(`${error.message}\nstarting the Temporal dev server once more`);
    return await launch(command, commandArgs, env, opts);
  }
}

class TemporalExited extends Error {}

async function launch(command: string, commandArgs: string[], env: NodeJS.ProcessEnv, opts: { port: number; uiPort?: number; dbFile?: string }): Promise<RunningTemporal> {
  // Its own process group: a Ctrl-C meant for us must not stop the server before the workers.
  const child = spawn(command, commandArgs, { stdio: ['ignore', 'ignore', 'pipe'], detached: true, env });
  const stopOnExit = () => child.kill('SIGTERM');
  process.once('exit', stopOnExit);
  if (opts.dbFile && child.pid) writeFileSync(`${opts.dbFile}.pid`, String(child.pid));
  // The start of its output as well as the end: a Go panic's reason comes first, then pages of stack.
  let head = '';
  let tail = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    if (head.length < 2000) head += String(chunk).slice(0, 2000 - head.length);
    tail = (tail + chunk).slice(-4000);
  });
  const log = () => (head.length < 2000 ? tail : `${head}\n...\n${tail}`);
  const address = `127.0.0.1:${opts.port}`;
  await waitForTemporal(address, child, log).catch((error: unknown) => {
    if (error instanceof TemporalExited) process.removeListener('exit', stopOnExit);
    throw error;
  });
  return {
    address,
    uiUrl: opts.uiPort ? `http://127.0.0.1:${opts.uiPort}` : null,
    process: child,
    stop: async () => {
      process.removeListener('exit', stopOnExit);
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/** Until the server answers for `namespace`; fails at once if its process exits. */
export async function waitForTemporal(address: string, child: ChildProcess, log: () => string, namespace = 'default'): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new TemporalExited(`temporal server exited (${child.exitCode}): ${log()}`);
    if (await servesNamespace(address, namespace).catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`temporal server not ready on ${address}: ${log()}`);
}

/** A dev server whose parent was killed keeps the database file locked: stop it first. */
async function stopLeftoverServer(pidFile: string): Promise<void> {
  if (!existsSync(pidFile)) return;
  const pid = Number(readFileSync(pidFile, 'utf8'));
  const alive = () => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  if (!pid || !alive() || !isDevServer(pid)) return;
  process.kill(pid, 'SIGTERM');
  for (let i = 0; i < 100 && alive(); i++) await new Promise((r) => setTimeout(r, 100));
}

function isDevServer(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('start-dev');
  } catch {
    return true; // no /proc (macOS): trust the pid file
  }
}
