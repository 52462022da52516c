import type { Client } from '@temporalio/client';
import type { Config } from '../config';
import { taskQueues, workflowIds } from '../temporal.config';
import { softwareStatusPollerWorkflow } from '../workflows/software-status';

/** Starts the software-status poller unless it runs already (one per fleet; tests pass their own id and queue). */
export async function ensureSoftwareStatusPoller(
  client: Client,
  opts: { config: Pick<Config, 'GREENGRASS_POLL_DEVICES_PER_SECOND' | 'GREENGRASS_POLL_MIN_INTERVAL_SECONDS'>; taskQueue?: string; workflowId?: string },
): Promise<void> {
  await client.workflow.start(softwareStatusPollerWorkflow, {
    taskQueue: opts.taskQueue ?? taskQueues.fleet,
    workflowId: opts.workflowId ?? workflowIds.softwareStatusPoller,
    args: [{ devicesPerSecond: opts.config.GREENGRASS_POLL_DEVICES_PER_SECOND, minIntervalSeconds: opts.config.GREENGRASS_POLL_MIN_INTERVAL_SECONDS }],
    workflowIdConflictPolicy: 'USE_EXISTING',
  });
}
