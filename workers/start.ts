import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { DefaultLogger, NativeConnection, Runtime } from '@temporalio/worker';
import pino from 'pino';
import { loadConfig } from '../config';
import { applyMigrations } from '../infra/migrate';
import { startMqttBroker } from '../infra/mqtt-broker';
import { startEmbeddedPostgres } from '../infra/postgres';
import { createPrisma } from '../infra/prisma';
import { connectTemporal, createTemporalClient, ensureSearchAttributes } from '../infra/temporal';
import { startTemporalDevServer } from '../infra/temporal-server';
import { RobotSimulator, simulatedSerials } from '../simulator/robot-simulator';
import { startApi } from './api';
import { startIngestWorker } from './ingest';
import { createFleetWorker } from './fleet-worker';

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
  const shutdown = async (code: number) => {
    for (const [name, stop] of stops.reverse()) await stop().catch((e) => log.warn({ err: String(e) }, `stopping ${name} failed`));
    process.exit(code);
  };
  process.once('SIGINT', () => void shutdown(0));
  process.once('SIGTERM', () => void shutdown(0));

  try {
    config.API_KEYS ??= `${developmentApiKey(dataDir)}:read,operate,deploy`;

    let databaseUrl = config.DATABASE_URL;
    if (!databaseUrl) {
      const postgres = await startEmbeddedPostgres({ dataDir: join(dataDir, 'postgres'), port: config.EMBEDDED_POSTGRES_PORT });
      stops.push(['PostgreSQL', postgres.stop]);
      databaseUrl = postgres.url;
    }
    const applied = await applyMigrations(databaseUrl);
    if (applied.length) log.info({ applied }, 'migrations applied');

    let temporalAddress = config.TEMPORAL_ADDRESS;
    let temporalUi = 'your Temporal cluster\'s UI';
    if (!temporalAddress) {
      const temporal = await startTemporalDevServer({ cliPath: config.TEMPORAL_CLI_PATH, port: 7233, uiPort: config.TEMPORAL_UI_PORT, dbFile: join(dataDir, 'temporal.db') });
      stops.push(['Temporal dev server', temporal.stop]);
      temporalAddress = temporal.address;
      temporalUi = temporal.uiUrl!;
    }
    const connection = await connectTemporal(config, temporalAddress);
    stops.push(['Temporal client', () => connection.close()]);
    await ensureSearchAttributes(connection, config.TEMPORAL_NAMESPACE);
    const temporal = createTemporalClient(connection, config.TEMPORAL_NAMESPACE);

    let mqttUrl = config.MQTT_URL;
    if (!mqttUrl) {
      const broker = await startMqttBroker({ port: config.MQTT_PORT });
      stops.push(['MQTT broker', broker.stop]);
      mqttUrl = broker.url;
    }

    const prisma = createPrisma(databaseUrl);
    stops.push(['database client', () => prisma.$disconnect()]);
    const workerConnection = await NativeConnection.connect({ address: temporalAddress, apiKey: config.TEMPORAL_API_KEY, tls: config.TEMPORAL_API_KEY ? true : undefined });
    const worker = await createFleetWorker({ connection: workerConnection, namespace: config.TEMPORAL_NAMESPACE, activityDeps: { prisma } });
    const running = worker.run();
    stops.push(['fleet worker', async () => {
      if (worker.getState() === 'RUNNING') worker.shutdown();
      await running;
      await workerConnection.close();
    }]);

    const ingest = await startIngestWorker({ mqttUrl, prisma, temporal, config, logger: log });
    stops.push(['ingest worker', ingest.close]);
    const server = await startApi({ prisma, temporal, config, logger: log });
    stops.push(['API', () => new Promise((r) => server.close(r))]);

    if (config.SIM_ROBOTS > 0) {
      const simulator = new RobotSimulator({ mqttUrl, serials: simulatedSerials(config.SIM_ROBOTS) });
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
        `  API key:      ${apiKey}`,
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

/** A development key kept in the data folder, so it stays the same across restarts. */
function developmentApiKey(dataDir: string): string {
  const file = join(dataDir, 'dev-api-key');
  if (!existsSync(file)) writeFileSync(file, `dev-${randomBytes(18).toString('base64url')}\n`, { mode: 0o600 });
  return readFileSync(file, 'utf8').trim();
}

void main();
