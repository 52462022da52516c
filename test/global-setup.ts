import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';
import { applyMigrations } from '../infra/migrate';
import { startMqttBroker } from '../infra/mqtt-broker';
import { startEmbeddedPostgres } from '../infra/postgres';
import { startTemporalDevServer } from '../infra/temporal-server';
import { freePort } from '../infra/ports';

/**
 * One real stack for the whole run: a Temporal dev server, PostgreSQL and an MQTT broker on free
 * ports, and the workflow bundle built once. Test files find them through the environment.
 */
export default async function globalSetup(): Promise<void> {
  // One folder per run, so that runs side by side do not share servers or files.
  const dir = resolve(__dirname, '..', '.data', `test-${process.pid}`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const [pgPort, temporalPort, mqttPort] = [await freePort(), await freePort(), await freePort()];

  const [postgres, temporal, broker, bundle] = await Promise.all([
    startEmbeddedPostgres({ dataDir: join(dir, 'postgres'), port: pgPort }),
    startTemporalDevServer({
      port: temporalPort,
      fast: true,
      // Small, so that tests see robot workflows continue-as-new after a few dozen events.
      dynamicConfig: { 'limit.historyCount.suggestContinueAsNew': 60 },
    }),
    startMqttBroker({ port: mqttPort }),
    bundleWorkflowCode({ workflowsPath: require.resolve('../workflows'), logger: quietLogger }),
    // The time-skipping test server's jars (test/support/time-skipping.ts): fetched once into .tools/.
    promisify(execFile)('bash', [resolve(__dirname, '..', 'scripts', 'temporal-test-server.sh'), 'install']),
  ]);
  await applyMigrations(postgres.url);
  const bundlePath = join(dir, 'workflow-bundle.js');
  writeFileSync(bundlePath, bundle.code);

  Object.assign(process.env, {
    DATABASE_URL: postgres.url,
    TEST_DATABASE_ADMIN_URL: postgres.adminUrl,
    TEMPORAL_ADDRESS: temporal.address,
    MQTT_URL: broker.url,
    TEST_WORKFLOW_BUNDLE: bundlePath,
  });
  (globalThis as Record<string, unknown>).__fleetStack = { postgres, temporal, broker, dir };
}

const quietLogger = {
  trace: () => undefined,
  debug: () => undefined,
  info: () => undefined,
  warn: (message: string) => console.warn(message),
  error: (message: string) => console.error(message),
  log: () => undefined,
};
