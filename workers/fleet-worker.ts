import { NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import mqtt from 'mqtt';
import { createActivities, type ActivityDeps } from '../activities';
import { createPartnerRegistry } from '../activities/partners';
import { loadConfig } from '../config';
import { ensureSoftwareStatusPoller } from '../clients/software-status';
import { createPrisma } from '../infra/prisma';
import { greengrassClientFromConfig } from '../infra/greengrass';
import { connectTemporal, createTemporalClient, temporalConnectionOptions } from '../clients/connection';
import { taskQueues } from '../temporal.config';

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
    // A cached robot workflow took about 0.4 MB (README, Cache sizes); a workflow not in the cache replays its history.
    maxCachedWorkflows: deps.maxCachedWorkflows ?? 2000,
  });
}

async function main(): Promise<void> {
  const config = loadConfig();
  if (!config.DATABASE_URL || !config.MQTT_URL) throw new Error('DATABASE_URL and MQTT_URL are required to run the worker on its own (npm start sets them up)');
  const connection = await NativeConnection.connect(temporalConnectionOptions(config));
  const prisma = createPrisma(config.DATABASE_URL);
  const commandsMqtt = await mqtt.connectAsync(config.MQTT_URL, { clientId: `fleet-worker-commands-${process.pid}`, reconnectPeriod: 1000 });
  const worker = await createFleetWorker({ connection, namespace: config.TEMPORAL_NAMESPACE, maxCachedWorkflows: config.WORKFLOW_CACHE_SIZE, activityDeps: { prisma, mqtt: commandsMqtt, pinSecret: config.PIN_HASH_SECRET, greengrass: greengrassClientFromConfig(config), partners: createPartnerRegistry(config) } });
  const client = createTemporalClient(await connectTemporal(config), config.TEMPORAL_NAMESPACE);
  await ensureSoftwareStatusPoller(client, { config });
  await worker.run();
  await commandsMqtt.endAsync();
  await prisma.$disconnect();
  await connection.close();
}

if (require.main === module) {
  main().catch((error) => {
    console.error(error);
    process.exit(1);
  });
}
