import { Connection } from '@temporalio/client';
import { loadConfig } from '../config';
import { createPrisma } from '../infra/prisma';
import { createTemporalClient } from '../clients/connection';
import { startApi } from '../workers/api';

/** The API for the benchmark's floor mode, which runs no Temporal: the client connects only if used. */
async function main(): Promise<void> {
  const config = loadConfig();
  const server = await startApi({
    prisma: createPrisma(config.DATABASE_URL!),
    temporal: createTemporalClient(Connection.lazy(), config.TEMPORAL_NAMESPACE),
    config,
  });
  process.once('SIGTERM', () => server.close(() => process.exit(0)));
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
