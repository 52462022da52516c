import { NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import mqtt from 'mqtt';
import { createActivities, type ActivityDeps } from '../activities';
import { createPartnerRegistry } from '../activities/partners';
import { loadConfig } from '../config';
import { ensureSoftwareStatusPoller } from '../clients/software-status';
import { createPrisma } from '../infra/prisma';
import { greengrassClientFromConfig } from '../infra/greengrass';
import { connectTemporal, createTemporalClient, missingSearchAttributes, temporalConnectionOptions, whenTemporalAnswers } from '../clients/connection';
import { mqttConnectOptions } from '../infra/mqtt-options';
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
    // A workflow not in the cache replays its history: size it for the robots served (docs/operations.md).
    maxCachedWorkflows: deps.maxCachedWorkflows ?? 2000,
  });
}

async function main(): Promise<void> {
  const config = loadConfig();
  if (!config.DATABASE_URL || !config.MQTT_URL) throw new Error('DATABASE_URL and MQTT_URL are required to run the worker on its own (npm start sets them up)');
  const retrying = (error: Error) => console.warn(`Temporal not reachable yet (${error.message}); trying again`);
  const clientConnection = await whenTemporalAnswers(config, () => connectTemporal(config), retrying);
  // Registered once by an operator (npm run temporal:setup), never silently here; a key that may not list them is let through.
  const missing = await missingSearchAttributes(clientConnection, config.TEMPORAL_NAMESPACE).catch(() => []);
  if (missing.length > 0) throw new Error(`namespace ${config.TEMPORAL_NAMESPACE} lacks the search attributes ${missing.join(', ')}: run \`npm run temporal:setup\` once (docs/operations.md)`);
  const connection = await whenTemporalAnswers(config, () => NativeConnection.connect(temporalConnectionOptions(config)), retrying);
  const prisma = createPrisma(config.DATABASE_URL);
  const commandsMqtt = await mqtt.connectAsync(config.MQTT_URL, { ...mqttConnectOptions(config), clientId: `fleet-worker-commands-${process.pid}`, reconnectPeriod: 1000 });
  const worker = await createFleetWorker({ connection, namespace: config.TEMPORAL_NAMESPACE, maxCachedWorkflows: config.WORKFLOW_CACHE_SIZE, activityDeps: { prisma, mqtt: commandsMqtt, pinSecret: config.PIN_HASH_SECRET, greengrass: greengrassClientFromConfig(config), partners: createPartnerRegistry(config) } });
  const client = createTemporalClient(clientConnection, config.TEMPORAL_NAMESPACE);
  // The fleet's one software-status poller is the workers' own workflow: whichever worker comes first starts it.
  await whenTemporalAnswers(config, () => ensureSoftwareStatusPoller(client, { config }), retrying);
  console.log(`fleet worker polling ${taskQueues.fleet} in namespace ${config.TEMPORAL_NAMESPACE}`);
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
