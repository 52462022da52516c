import type { AddressInfo } from 'node:net';
import pino, { type Logger } from 'pino';
import { createApp } from '../../api/app';
import { createApiStreams } from '../../api/streams';
import { loadConfig } from '../../config';
import { listenHttp } from '../../infra/http-server';
import type { TestFleet } from './fleet';
import { required } from './fleet';

/**
 * Another API process on the fleet's database and Temporal, configured by `env` (defaults otherwise), with the fleet's keys,
 * and its own streams (and listening connection).
 */
export async function serveApi(fleet: TestFleet, env: Record<string, string>, logger: Logger = pino({ level: 'silent' })): Promise<{ url: string; close(): Promise<void> }> {
  const config = loadConfig({ ...process.env, LOG_LEVEL: 'silent', API_KEYS: `${fleet.keys.all}:read,operate,deploy;${fleet.keys.read}:read`, ...env });
  const streams = createApiStreams({ prisma: fleet.prisma, databaseUrl: required('DATABASE_URL'), logger, heartbeatMs: config.EVENTS_STREAM_HEARTBEAT_SECONDS * 1000 });
  const app = createApp({ prisma: fleet.prisma, temporal: fleet.temporal, config, logger, taskQueue: fleet.taskQueue, eventStream: streams.eventStream, deviceUpdates: streams.deviceUpdates });
  const server = await listenHttp(app, 0, '127.0.0.1');
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: async () => {
      await streams.close();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
