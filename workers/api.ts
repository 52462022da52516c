import type { Server } from 'node:http';
import type { Client } from '@temporalio/client';
import type { Logger } from 'pino';
import { createApp } from '../api/app';
import { loadConfig, type Config } from '../config';
import { createPrisma, type Prisma } from '../infra/prisma';
import { connectTemporal, createTemporalClient } from '../infra/temporal';

/** The REST API process: listens on PORT and closes cleanly. */
export async function startApi(deps: { prisma: Prisma; temporal: Client; config: Config; logger?: Logger }): Promise<Server> {
  const app = createApp(deps);
  return new Promise((resolve, reject) => {
    const server = app.listen(deps.config.PORT, () => resolve(server));
    server.once('error', reject);
  });
}

async function main(): Promise<void> {
  const config = loadConfig();
  if (!config.DATABASE_URL) throw new Error('DATABASE_URL is required to run the API on its own (npm start sets it up)');
  const connection = await connectTemporal(config);
  const server = await startApi({ prisma: createPrisma(config.DATABASE_URL), temporal: createTemporalClient(connection, config.TEMPORAL_NAMESPACE), config });
  console.log(`API on http://127.0.0.1:${config.PORT}`);
  const shutdown = () => server.close(() => process.exit(0));
  process.once('SIGINT', shutdown);
  process.once('SIGTERM', shutdown);
}

if (require.main === module) {
  main().catch((error) => {
    console.error(error);
    process.exit(1);
  });
}
