import type { AddressInfo } from 'node:net';
import pino, { type Logger } from 'pino';
import { createApp } from '../../api/app';
import { loadConfig } from '../../config';
import { listenHttp } from '../../infra/http-server';
import type { TestFleet } from './fleet';

/** Another API process on the fleet's database and Temporal, configured by `env` (defaults otherwise), with the fleet's keys. */
export async function serveApi(fleet: TestFleet, env: Record<string, string>, logger: Logger = pino({ level: 'silent' })): Promise<{ url: string; close(): Promise<void> }> {
  const config = loadConfig({ ...process.env, LOG_LEVEL: 'silent', API_KEYS: `${fleet.keys.all}:read,operate,deploy;${fleet.keys.read}:read`, ...env });
  const app = createApp({ prisma: fleet.prisma, temporal: fleet.temporal, config, logger, taskQueue: fleet.taskQueue });
  const server = await listenHttp(app, 0, '127.0.0.1');
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, close: () => new Promise((r) => server.close(() => r())) };
}
