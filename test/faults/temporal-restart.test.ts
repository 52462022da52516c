import { startProcessStack, type ProcessStack } from '../support/processes';
import { sleep } from './fleet-load';
import { runUnderFault } from './scenarios';

/**
 * The Temporal dev server stopped for 30 s and started again on its database file, under load,
 * with lid cycles and a rollout under way. Meanwhile the projection stays fresh and the API reads
 * it; what needs Temporal answers 503. The ingest worker cannot signal, yet keeps acknowledging:
 * what the robot workflows must see waits in the robot inbox (PostgreSQL), so the ingest holds
 * no more than a batch and its memory stays flat. Afterwards the inbox drains, every workflow
 * resumes, and nothing is lost or doubled.
 */

const MAX_PENDING = 1000;
const DOWN_MS = 30_000;

let stack: ProcessStack;

beforeAll(async () => {
  stack = await startProcessStack({ env: { COMMAND_TIMEOUT_SECONDS: '180', PIN_LOCKOUT_ATTEMPTS: '1000000', INGEST_MAX_PENDING: String(MAX_PENDING) } });
}, 300_000);

afterAll(async () => {
  await stack?.stop();
});

async function ingestGauge(name: string): Promise<number> {
  const text = await (await fetch(stack.ingestMetricsUrl, { signal: AbortSignal.timeout(2000) })).text();
  return Number(new RegExp(`^${name} (\\d+)`, 'm').exec(text)?.[1] ?? NaN);
}

test('Temporal stopped for 30 s and restarted on its database file: ingestion goes on, the robot inbox keeps what the workflows must see, they resume, nothing lost', async () => {
  const problems: string[] = [];
  const pending: number[] = [];
  const inbox: number[] = [];
  let projectedBefore = 0;
  let projectedAfter = 0;
  const rss: number[] = [];
  let rssBefore = 0;
  let projectionReads = 0;
  await runUnderFault(stack, {
    fault: `Temporal dev server stopped (SIGTERM) for ${DOWN_MS / 1000} s, restarted on its database file`,
    inject: async ({ load }) => {
      rssBefore = stack.rssMb('ingest');
      await stack.stopTemporal();
      const until = Date.now() + DOWN_MS;
      const watched = load.serials[5];
      const lastHeartbeatAt = async () => (await stack.prisma.device.findUnique({ where: { serialNumber: watched } }))?.lastHeartbeatAt?.getTime() ?? 0;
      projectedBefore = await lastHeartbeatAt();
      while (Date.now() < until) {
        pending.push(await ingestGauge('fleet_ingest_pending_messages'));
        inbox.push(await ingestGauge('fleet_robot_inbox_rows'));
        rss.push(stack.rssMb('ingest'));
        const serial = load.serials[5];
        const fromProjection = await stack.api(`/v1/devices/${serial}`);
        if (fromProjection.status === 200) projectionReads += 1;
        else problems.push(`GET /v1/devices/${serial} while Temporal is down: ${fromProjection.status}`);
        const live = await stack.api(`/v1/devices/${serial}?fresh=true`);
        if (live.status !== 503 || live.body?.error?.code !== 'UNAVAILABLE') problems.push(`GET ?fresh=true while Temporal is down: ${live.status} ${JSON.stringify(live.body)}`);
        await sleep(1000);
      }
      projectedAfter = await lastHeartbeatAt();
      const restartedAt = Date.now();
      await stack.startTemporal();
      return restartedAt;
    },
    during: () => {
      const peak = Math.max(...pending);
      const inboxPeak = Math.max(...inbox);
      if (!(peak < MAX_PENDING)) problems.push(`the ingest held ${peak} messages (INGEST_MAX_PENDING ${MAX_PENDING}): it stopped acknowledging while Temporal was down`);
      if (!(inboxPeak > 0)) problems.push('nothing waited in the robot inbox while Temporal was down: the outage was not exercised');
      if (!(projectedAfter > projectedBefore + DOWN_MS / 2)) problems.push(`the projection did not move while Temporal was down (${projectedBefore} -> ${projectedAfter})`);
      if (projectionReads === 0) problems.push('the projection could not be read while Temporal was down');
      return {
        problems,
        notes: [
          `ingest held at most ${peak} messages, the robot inbox at most ${inboxPeak} heartbeats`,
          `RSS ${rssBefore.toFixed(0)} MiB before, at most ${Math.max(...rss).toFixed(0)} MiB during`,
        ],
      };
    },
  });
});
