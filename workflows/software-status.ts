import { continueAsNew, log, proxyActivities, sleep, workflowInfo } from '@temporalio/workflow';
import type { createActivities } from '../activities';
import { sweepIntervalMs } from '../domain/software-sweep';
import { timing } from '../temporal.config';

/**
 * Walks the fleet in serial order, a batch at a time, reading each robot's Greengrass core
 * device, installed components and effective deployments into `device_software`. Batches are
 * paced at `devicesPerSecond` (three Greengrass calls per robot), and a sweep starts at most
 * every `minIntervalSeconds`, so the sweep interval grows with the fleet instead of the request
 * rate. One sweep per run, then continue-as-new, so history stays small.
 */

export type SoftwareStatusPollerInput = {
  devicesPerSecond: number;
  minIntervalSeconds: number;
  batchSize?: number;
  /** Where a sweep cut short by continue-as-new resumes. */
  resumeAfter?: string | null;
};

type Activities = ReturnType<typeof createActivities>;
const { pollSoftwareStatus } = proxyActivities<Activities>(timing.greengrassActivity);
const { listRobotSerials, countRobots } = proxyActivities<Activities>(timing.projectionActivity);

export async function softwareStatusPollerWorkflow(input: SoftwareStatusPollerInput): Promise<void> {
  const started = Date.now();
  const batchSize = input.batchSize ?? 20;
  const fleetSize = await countRobots();
  const interval = sweepIntervalMs(fleetSize, input.devicesPerSecond, input.minIntervalSeconds * 1000);
  const perBatchMs = (batchSize / input.devicesPerSecond) * 1000;
  let after = input.resumeAfter ?? null;

  for (;;) {
    const serials = await listRobotSerials({ after, limit: batchSize });
    if (serials.length === 0) break;
    const batchStarted = Date.now();
    try {
      await pollSoftwareStatus(serials);
    } catch (error) {
      // Access or configuration trouble: keep walking; the next sweep tries again.
      log.warn('software status batch failed', { first: serials[0], error: String(error) });
    }
    after = serials[serials.length - 1];
    if (serials.length < batchSize) break;
    const pace = perBatchMs - (Date.now() - batchStarted);
    if (pace > 0) await sleep(pace);
    if (workflowInfo().continueAsNewSuggested) await continueAsNew<typeof softwareStatusPollerWorkflow>({ ...input, resumeAfter: after });
  }

  const rest = interval - (Date.now() - started);
  if (rest > 0) await sleep(rest);
  await continueAsNew<typeof softwareStatusPollerWorkflow>({ ...input, resumeAfter: null });
}
