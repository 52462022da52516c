import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { DefaultLogger, NativeConnection, Runtime } from '@temporalio/worker';
import mqtt from 'mqtt';
import pino from 'pino';
import { loadConfig } from '../config';
import { applyMigrations } from '../infra/migrate';
import { startMqttBroker } from '../infra/mqtt-broker';
import { startEmbeddedPostgres } from '../infra/postgres';
import { createPrisma } from '../infra/prisma';
import { listAllRobotSerials } from '../store/software';
import { connectTemporal, createTemporalClient, ensureSearchAttributes, temporalConnectionOptions } from '../clients/connection';
import { startTemporalOnPostgres } from '../infra/temporal-postgres';
import { startTemporalDevServer } from '../infra/temporal-server';
import { startLocalSqs } from '../infra/sqs-local';
import { createSqsClient } from '../infra/sqs';
import { startIotRuleBridge } from '../infra/iot-rule-local';
import { mqttConnectOptions } from '../infra/mqtt-options';
import { RobotSimulator, simulatedSerials } from '../simulator/robot-simulator';
import { startApi } from './api';
import { createApiStreams } from '../api/streams';
import { exchangeName } from '../outbox/messages';
import { startEventPublisher } from '../outbox/publisher';
import { startIngestWorker } from './ingest';
import { createFleetWorker } from './fleet-worker';
import { ensureSoftwareStatusPoller } from '../clients/software-status';
import { greengrassClientFromConfig, wantsLocalGreengrass } from '../infra/greengrass';
import { startLocalGreengrass } from '../infra/greengrass-local';
import { startLocalDoorDash } from '../infra/doordash-local';
import { createPartnerRegistry } from '../activities/partners';

/**
 * `npm start`: the whole stack on one machine. Each piece the environment does not name is
 * started here (Temporal dev server, PostgreSQL, MQTT broker), with state in DATA_DIR;
 * then the robot worker, the ingest worker, the API and the simulator, all in this process.
 */
type Stop = [name: string, stop: () => Promise<unknown>];

async function main(): Promise<void> {
  const started = Date.now();
  const config = loadConfig();
  const log = pino({ level: config.LOG_LEVEL });
  // Shutdown is ours (below), in order; the SDK's own signal handling would race it.
  Runtime.install({ logger: new DefaultLogger('WARN'), shutdownSignals: [] });
  const dataDir = resolve(config.DATA_DIR);
  mkdirSync(dataDir, { recursive: true });
  const stops: Stop[] = [];
  // Output piped through `tee` loses its reader on Ctrl-C: a write must not end the process mid-shutdown.
  for (const stream of [process.stdout, process.stderr]) stream.on('error', () => undefined);
  let stopping = false;
  const shutdown = async (code: number) => {
    if (stopping) return console.log('Still stopping; the servers are being shut down in order.');
    stopping = true;
    console.log('Stopping...');
    for (const [name, stop] of stops.reverse()) await stopWithin(name, stop, log);
    console.log(code === 0 ? 'Stopped.' : 'Stopped after a start-up failure.');
    process.exit(code);
  };
  process.on('SIGINT', () => void shutdown(0));
  process.on('SIGTERM', () => void shutdown(0));
  process.on('SIGHUP', () => void shutdown(0));

  try {
    config.API_KEYS ??= `${developmentApiKey(dataDir)}:read,operate,deploy`;
    const generatedPinSecret = config.PIN_HASH_SECRET === undefined;
    config.PIN_HASH_SECRET ??= developmentPinSecret(dataDir);
    const generatedDriveuSecret = config.DRIVEU_WEBHOOK_SECRET === undefined;
    config.DRIVEU_WEBHOOK_SECRET ??= developmentSecret(dataDir, 'dev-driveu-webhook-secret');
    let doordashUrl = config.DOORDASH_BASE_URL ?? '';
    if (!config.DOORDASH_BASE_URL) {
      const doordash = await startLocalDoorDash({ credentials: { developerId: config.DOORDASH_DEVELOPER_ID, keyId: config.DOORDASH_KEY_ID, signingSecret: config.DOORDASH_SIGNING_SECRET } });
      stops.push(['local DoorDash', doordash.stop]);
      Object.assign(config, { DOORDASH_BASE_URL: doordash.url, DOORDASH_DEVELOPER_ID: doordash.credentials.developerId, DOORDASH_KEY_ID: doordash.credentials.keyId, DOORDASH_SIGNING_SECRET: doordash.credentials.signingSecret });
      doordashUrl = `${doordash.url} (local; GET /__local/pushes, POST /__local/throttle or /__local/fail)`;
    }

    let databaseUrl = config.DATABASE_URL;
    let adminDatabaseUrl: string | undefined;
    if (!databaseUrl) {
      const postgres = await startEmbeddedPostgres({ dataDir: join(dataDir, 'postgres'), port: config.EMBEDDED_POSTGRES_PORT });
      stops.push(['PostgreSQL', postgres.stop]);
      databaseUrl = postgres.url;
      adminDatabaseUrl = postgres.adminUrl;
    }
    const applied = await applyMigrations(databaseUrl);
    if (applied.length) log.info({ applied }, 'migrations applied');

    let temporalAddress = config.TEMPORAL_ADDRESS;
    let temporalUi = 'your Temporal cluster\'s UI';
    if (!temporalAddress && config.TEMPORAL_SERVER === 'postgres') {
      // The role of DATABASE_URL must be allowed to create the temporal and temporal_visibility databases.
      const temporal = await startTemporalOnPostgres({ adminUrl: adminDatabaseUrl ?? databaseUrl, port: config.TEMPORAL_PORT, uiPort: config.TEMPORAL_UI_PORT, dataDir });
      stops.push(['Temporal server', temporal.stop]);
      temporalAddress = temporal.address;
      temporalUi = `${temporal.uiUrl} (Temporal server on PostgreSQL)`;
    } else if (!temporalAddress) {
      const temporal = await startTemporalDevServer({ cliPath: config.TEMPORAL_CLI_PATH, port: config.TEMPORAL_PORT, uiPort: config.TEMPORAL_UI_PORT, dbFile: join(dataDir, 'temporal.db') });
      stops.push(['Temporal dev server', temporal.stop]);
      temporalAddress = temporal.address;
      temporalUi = temporal.uiUrl!;
    }
    const connection = await connectTemporal(config, temporalAddress);
    stops.push(['Temporal client', () => connection.close()]);
    // npm start is the one-machine convenience: it does what `npm run temporal:setup` does, and says so.
    const added = await ensureSearchAttributes(connection, config.TEMPORAL_NAMESPACE);
    if (added.length) log.info({ added, namespace: config.TEMPORAL_NAMESPACE }, 'search attributes registered');
    const temporal = createTemporalClient(connection, config.TEMPORAL_NAMESPACE);

    let mqttUrl = config.MQTT_URL;
    if (!mqttUrl) {
      const broker = await startMqttBroker({ port: config.MQTT_PORT });
      stops.push(['MQTT broker', broker.stop]);
      mqttUrl = broker.url;
    }
    let sqsLine = 'off (INGEST_SOURCE=mqtt)';
    if (config.INGEST_SOURCE === 'sqs' && !config.SQS_HEARTBEAT_QUEUE_URL) {
      // The production path locally: robots -> broker -> (an IoT Rule's stand-in) -> SQS -> ingest.
      const queue = await startLocalSqs({ port: config.SQS_LOCAL_PORT });
      stops.push(['local SQS', queue.stop]);
      const sqs = createSqsClient({ region: config.AWS_REGION, endpoint: queue.endpoint });
      const bridge = await startIotRuleBridge({ mqttUrl, sqs, queueUrl: queue.queueUrl });
      stops.push(['IoT Rule bridge', async () => (await bridge.close(), sqs.destroy())]);
      Object.assign(config, { SQS_HEARTBEAT_QUEUE_URL: queue.queueUrl, SQS_ENDPOINT: queue.endpoint });
      sqsLine = `${queue.queueUrl} (local ElasticMQ, fed from MQTT by a stand-in for the AWS IoT Rule)`;
    } else if (config.INGEST_SOURCE === 'sqs') {
      sqsLine = config.SQS_HEARTBEAT_QUEUE_URL!;
    }

    const prisma = createPrisma(databaseUrl);
    let greengrassUrl = config.GREENGRASS_ENDPOINT ?? `AWS Greengrass in ${config.AWS_REGION}`;
    let localGreengrass: string | undefined;
    if (wantsLocalGreengrass(process.env, config.GREENGRASS_ENDPOINT)) {
      const local = await startLocalGreengrass({
        port: config.GREENGRASS_LOCAL_PORT,
        region: config.AWS_REGION,
        stateFile: join(dataDir, 'greengrass-local.json'),
        knownThings: () => listAllRobotSerials(prisma),
      });
      stops.push(['local Greengrass', local.stop]);
      greengrassUrl = `${local.url} (local; POST /_control to fail, stall or throttle)`;
      localGreengrass = local.url;
    }
    const greengrass = greengrassClientFromConfig(config, localGreengrass);
    stops.push(['database client', () => prisma.$disconnect()]);
    const workerConnection = await NativeConnection.connect(temporalConnectionOptions(config, temporalAddress));
    const commandsMqtt = await mqtt.connectAsync(mqttUrl, { ...mqttConnectOptions(config), clientId: `fleet-worker-commands-${process.pid}`, reconnectPeriod: 1000 });
    stops.push(['command publisher', () => commandsMqtt.endAsync()]);
    const worker = await createFleetWorker({ connection: workerConnection, namespace: config.TEMPORAL_NAMESPACE, maxCachedWorkflows: config.WORKFLOW_CACHE_SIZE, activityDeps: { prisma, mqtt: commandsMqtt, pinSecret: config.PIN_HASH_SECRET, greengrass, partners: createPartnerRegistry(config) } });
    const running = worker.run();
    stops.push(['fleet worker', async () => {
      if (worker.getState() === 'RUNNING') worker.shutdown();
      await running;
      await workerConnection.close();
    }]);

    const ingest = await startIngestWorker({ mqttUrl, databaseUrl, prisma, temporal, config, logger: log });
    stops.push(['ingest worker', ingest.close]);
    await ensureSoftwareStatusPoller(temporal, { config });
    const streams = createApiStreams({ prisma, databaseUrl, logger: log, heartbeatMs: config.EVENTS_STREAM_HEARTBEAT_SECONDS * 1000 });
    const server = await startApi({ prisma, temporal, config, logger: log, greengrass, eventStream: streams.eventStream, deviceUpdates: streams.deviceUpdates });
    stops.push(['API', () => new Promise((r) => server.close(r))]);
    stops.push(['streams', streams.close]); // stopped before the API: open streams keep it from closing
    if (config.AMQP_URL) {
      const publisher = startEventPublisher({ databaseUrl, amqpUrl: config.AMQP_URL, env: config.EVENTS_ENV, logger: log });
      stops.push(['event publisher', publisher.stop]);
    }

    if (config.SIM_ROBOTS > 0) {
      // Simulated robots open the lid 2 s after an unlock and close it 8 s later: a whole loading cycle.
      const simulator = new RobotSimulator({ mqttUrl, serials: simulatedSerials(config.SIM_ROBOTS), lidAfterUnlock: { openAfterMs: 2000, closeAfterMs: 8000 } });
      await simulator.start();
      stops.push(['simulator', () => simulator.stop()]);
    }

    const apiUrl = `http://127.0.0.1:${config.PORT}`;
    const apiKey = config.API_KEYS.split(';')[0].split(':')[0];
    console.log(
      [
        '',
        `Fleet backend is up (${((Date.now() - started) / 1000).toFixed(1)} s).`,
        `  API:          ${apiUrl}   (OpenAPI: ${apiUrl}/openapi.json)`,
        `  Temporal UI:  ${temporalUi}`,
        `  MQTT:         ${mqttUrl}`,
        `  SQS:          ${sqsLine}`,
        `  Events:       ${apiUrl}/v1/events/stream (SSE); ${config.AMQP_URL ? `RabbitMQ exchange ${exchangeName(config.EVENTS_ENV)}` : 'RabbitMQ off (AMQP_URL unset)'}`,
        `  API key:      ${apiKey}`,
        `  Lid PINs:     ${config.LID_PIN_FLOW} flow; PIN_HASH_SECRET ${generatedPinSecret ? `generated, kept in ${join(dataDir, 'dev-pin-hash-secret')}` : 'from the environment'}`,
        `  Greengrass:   ${greengrassUrl}`,
        `  DoorDash:     ${doordashUrl}`,
        `  DriveU:       POST ${apiUrl}/v1/webhooks/driveu signed with ${generatedDriveuSecret ? `the development secret ${config.DRIVEU_WEBHOOK_SECRET} (kept in ${join(dataDir, 'dev-driveu-webhook-secret')})` : 'DRIVEU_WEBHOOK_SECRET'}`,
        config.SIM_ROBOTS > 0 ? `  Simulator:    ${config.SIM_ROBOTS} robots (${simulatedSerials(1)[0]}...)` : '  Simulator:    off (SIM_ROBOTS=0)',
        '',
        `Try: curl -H 'x-api-key: ${apiKey}' ${apiUrl}/v1/devices`,
        'Ctrl-C stops everything.',
        '',
      ].join('\n'),
    );
  } catch (error) {
    log.error({ err: (error as Error).message }, 'start-up failed');
    await shutdown(1);
  }
}

/** A piece that does not stop in time is left behind in the log, not waited on for ever. */
async function stopWithin(name: string, stop: () => Promise<unknown>, log: pino.Logger, ms = 30_000): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((resolve) => (timer = setTimeout(resolve, ms, 'late')));
  const outcome = await Promise.race([stop().then(() => 'stopped' as const, (e: unknown) => e), late]);
  clearTimeout(timer);
  if (outcome === 'late') log.warn(`stopping ${name} took over ${ms / 1000} s; going on`);
  else if (outcome !== 'stopped') log.warn({ err: String(outcome) }, `stopping ${name} failed`);
}

/** A development key kept in the data folder, so it stays the same across restarts. */
function developmentApiKey(dataDir: string): string {
  const file = join(dataDir, 'dev-api-key');
  if (!existsSync(file)) writeFileSync(file, `dev-${randomBytes(18).toString('base64url')}\n`, { mode: 0o600 });
  return readFileSync(file, 'utf8').trim();
}

/** PIN_HASH_SECRET for development, kept beside the key: PINs set before a restart stay valid after it. */
function developmentPinSecret(dataDir: string): string {
  const file = join(dataDir, 'dev-pin-hash-secret');
  if (!existsSync(file)) writeFileSync(file, `${randomBytes(32).toString('base64url')}\n`, { mode: 0o600 });
  return readFileSync(file, 'utf8').trim();
}

/** A development secret kept in the data folder, so it stays the same across restarts. */
function developmentSecret(dataDir: string, name: string): string {
  const file = join(dataDir, name);
  if (!existsSync(file)) writeFileSync(file, `${randomBytes(32).toString('base64url')}\n`, { mode: 0o600 });
  return readFileSync(file, 'utf8').trim();
}

void main();
