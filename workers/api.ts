import type { Server } from 'node:http';
import pino from 'pino';
import { createApp, type AppDeps } from '../api/app';
import { createApiStreams } from '../api/streams';
import { listenHttp } from '../infra/http-server';
import { greengrassClientFromConfig } from '../infra/greengrass';
import { loadConfig } from '../config';
import { createPrisma } from '../infra/prisma';
import { connectTemporal, whenTemporalAnswers, createTemporalClient } from '../clients/connection';

/** The REST API process: listens on PORT and closes cleanly. */
export async function startApi(deps: AppDeps): Promise<Server> {
  return listenHttp(createApp(deps), deps.config.PORT);
}

async function main(): Promise<void> {
  const config = loadConfig();
  if (!config.DATABASE_URL) throw new Error('DATABASE_URL is required to run the API on its own (npm start sets it up)');
  const connection = await whenTemporalAnswers(config, () => connectTemporal(config), (error) => console.warn(`Temporal not reachable yet (${error.message}); trying again`));
  const prisma = createPrisma(config.DATABASE_URL);
  const logger = pino({ level: config.LOG_LEVEL });
  const streams = createApiStreams({ prisma, databaseUrl: config.DATABASE_URL, logger, heartbeatMs: config.EVENTS_STREAM_HEARTBEAT_SECONDS * 1000 });
  const { eventStream, deviceUpdates } = streams;
  const server = await startApi({ prisma, temporal: createTemporalClient(connection, config.TEMPORAL_NAMESPACE), config, logger, greengrass: greengrassClientFromConfig(config), eventStream, deviceUpdates });
  console.log(`API on http://127.0.0.1:${config.PORT}`);
  // Open streams would keep the server from closing: end them first.
  const shutdown = () => void streams.close().then(() => server.close(() => process.exit(0)));
  process.once('SIGINT', shutdown);
  process.once('SIGTERM', shutdown);
}

if (require.main === module) {
  main().catch((error) => {
    console.error(error);
    process.exit(1);
  });
}
