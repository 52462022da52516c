import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createConnection } from 'node:net';

/**
 * Mosquitto 2 (Debian's; scripts/mosquitto.sh installs it) as the tests, the fault suite and the
 * benchmark run it: the broker with shared subscriptions and MQTT 5 that the embedded aedes is
 * not. Settings that matter for the ingest (docs/operations.md, "Ingest at scale"):
 * - `persistence true`, saved every second: sessions and queued QoS 1 messages outlive a restart;
 * - `max_inflight_messages 1000` (default 20): an ingest worker holds its PUBACKs until its batch is
 *   written, up to MQTT_MAX_UNACKED per connection (2.0.11's own cap also leaks past a window);
 * - `max_queued_messages 100000` (default 1000): a group member that is down keeps its share of the
 *   messages queued for its session, and the default dropped most of them within seconds;
 * - `set_tcp_nodelay true`: lower latency for a little more broker CPU.
 * With `tls`, the listener requires a client certificate signed by `tls.ca`.
 */

export type MosquittoTls = { ca: string; cert: string; key: string };
export type RunningMosquitto = { url: string; process: ChildProcess; stop(signal?: NodeJS.Signals): Promise<void> };

export function findMosquitto(): string | null {
  const candidates = [process.env.MOSQUITTO_PATH, ...(process.env.PATH ?? '').split(':').map((d) => d && join(d, 'mosquitto')), '/usr/sbin/mosquitto'];
  return candidates.find((c): c is string => !!c && existsSync(c)) ?? null;
}

export function mosquittoConf(opts: { port: number; dataDir: string; tls?: MosquittoTls }): string {
  const asRoot = process.getuid?.() === 0;
  return [
    `listener ${opts.port} 127.0.0.1`,
    ...(opts.tls ? [`cafile ${opts.tls.ca}`, `certfile ${opts.tls.cert}`, `keyfile ${opts.tls.key}`, 'require_certificate true', 'use_identity_as_username true'] : []),
    'allow_anonymous true',
    'persistence true',
    `persistence_location ${opts.dataDir}/`,
    'autosave_interval 1',
    'max_queued_messages 100000',
    'max_inflight_messages 1000',
    'set_tcp_nodelay true',
    `message_size_limit ${128 * 1024}`,
    // As root Mosquitto would switch to the `mosquitto` user, who cannot read this folder.
    ...(asRoot ? ['user root'] : []),
    'log_dest stderr',
    'log_type error',
    'log_type warning',
    '',
  ].join('\n');
}

/** Starts it and resolves once it listens; `dir` keeps its configuration and persistence file. */
export async function startMosquitto(opts: { port: number; dir: string; tls?: MosquittoTls }): Promise<RunningMosquitto> {
  const binary = findMosquitto();
  if (!binary) throw new Error('mosquitto is not installed: run scripts/mosquitto.sh');
  const dataDir = join(opts.dir, 'mosquitto');
  mkdirSync(dataDir, { recursive: true });
  const conf = join(opts.dir, 'mosquitto.conf');
  writeFileSync(conf, mosquittoConf({ port: opts.port, dataDir, tls: opts.tls }));
  const child = spawn(binary, ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
  let tail = '';
  child.stderr?.on('data', (chunk: Buffer) => (tail = (tail + chunk).slice(-4000)));
  const stopOnExit = () => child.kill('SIGTERM');
  process.once('exit', stopOnExit);
  for (let i = 0; !(await listening(opts.port)); i++) {
    if (child.exitCode !== null) throw new Error(`mosquitto exited (${child.exitCode}): ${tail}`);
    if (i > 300) throw new Error(`mosquitto does not listen on ${opts.port}: ${tail}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url: `${opts.tls ? 'mqtts' : 'mqtt'}://127.0.0.1:${opts.port}`,
    process: child,
    stop: async (signal = 'SIGTERM') => {
      process.removeListener('exit', stopOnExit);
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill(signal);
      await exited;
    },
  };
}

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ port, host: '127.0.0.1' }, () => {
      socket.end();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
