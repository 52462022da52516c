import { resolve } from 'node:path';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { temporal } from '@temporalio/proto';
import type { ActivityDeps } from '../../activities';
import { freePort } from '../../infra/ports';
import { installRuntime, startFleet, type TestFleet } from './fleet';

/**
 * The fleet of test/support/fleet.ts on Temporal's time-skipping test server instead of the shared
 * dev server: timers of minutes or days pass in milliseconds while the test waits in `skip`. The
 * server is the Java test server from Maven Central (scripts/temporal-test-server.sh, installed by
 * test/global-setup.ts), one per test, so that one test's skipped days never leak into another's.
 */
export type TimeSkippingFleet = TestFleet & {
  env: TestWorkflowEnvironment;
  /** Lets `duration` of workflow time pass; timers due in it fire in order. */
  skip(duration: string): Promise<void>;
  /** The test server's clock (ms): where workflow time is now. */
  now(): Promise<number>;
};

const wrapper = resolve(__dirname, '..', '..', 'scripts', 'temporal-test-server.sh');
const { IndexedValueType } = temporal.api.enums.v1;

export async function startTimeSkippingFleet(vars: Record<string, string> = {}, deps: Omit<Partial<ActivityDeps>, 'prisma'> = {}): Promise<TimeSkippingFleet> {
  // A port of our choosing: the SDK would pick one with a bind-and-release of its own.
  const port = await freePort();
  installRuntime();
  const env = await TestWorkflowEnvironment.createTimeSkipping({ server: { executable: { type: 'existing-path', path: wrapper }, port } });
  try {
    // The test server knows no custom search attribute until it is added (the dev server takes flags).
    await env.connection.operatorService.addSearchAttributes({
      namespace: env.namespace ?? 'default',
      searchAttributes: { RobotSerial: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD, FleetStatus: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD, Online: IndexedValueType.INDEXED_VALUE_TYPE_BOOL },
    });
    const fleet = await startFleet(vars, deps, { temporalAddress: `127.0.0.1:${port}` });
    return {
      ...fleet,
      env,
      skip: (duration) => env.sleep(duration),
      now: () => env.currentTimeMs(),
      stop: async () => {
        await fleet.stop();
        await env.teardown();
      },
    };
  } catch (error) {
    await env.teardown();
    throw error;
  }
}
