import { NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import { createActivities, type ActivityDeps } from '../activities';
import { loadConfig } from '../config';
import { createPrisma } from '../infra/prisma';
import { defaultTemporalAddress, taskQueues } from '../temporal.config';

/** The Temporal worker: every workflow of workflows/ and every activity, on one task queue. */
export async function createFleetWorker(deps: {
  connection: NativeConnection;
  namespace: string;
  activityDeps: ActivityDeps;
  taskQueue?: string;
  workflowBundle?: WorkerOptions['workflowBundle'];
  maxCachedWorkflows?: number;
}): Promise<Worker> {
  return Worker.create({
    connection: deps.connection,
    namespace: deps.namespace,
    taskQueue: deps.taskQueue ?? taskQueues.fleet,
    ...(deps.workflowBundle ? { workflowBundle: deps.workflowBundle } : { workflowsPath: require.resolve('../workflows') }),
    activities: createActivities(deps.activityDeps),
    // About 600 cached workflows fit per GB; a robot's workflow is small, and cache misses replay history.
    maxCachedWorkflows: deps.maxCachedWorkflows ?? 2000,
  });
}

async function main(): Promise<void> {
  const config = loadConfig();
  if (!config.DATABASE_URL) throw new Error('DATABASE_URL is required to run the worker on its own (npm start sets it up)');
  const connection = await NativeConnection.connect({ address: config.TEMPORAL_ADDRESS ?? defaultTemporalAddress, apiKey: config.TEMPORAL_API_KEY });
  const prisma = createPrisma(config.DATABASE_URL);
  const worker = await createFleetWorker({ connection, namespace: config.TEMPORAL_NAMESPACE, activityDeps: { prisma } });
  await worker.run();
  await prisma.$disconnect();
  await connection.close();
}

if (require.main === module) {
  main().catch((error) => {
    console.error(error);
    process.exit(1);
  });
}
