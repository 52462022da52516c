import { WorkflowIdReusePolicy, type Client } from '@temporalio/client';
import { partnerReceives } from '../activities/partners';
import type { ProviderMappingReplica } from '../domain/fleet-facts';
import type { DeliverySnapshot } from '../domain/partner-delivery';
import { searchAttributes, taskQueues, workflowIds } from '../temporal.config';
import { deliverySnapshotSignal, partnerDeliveryWorkflow } from '../workflows/partner-delivery';
import { isAlreadyStarted, isWorkflowNotFound } from './errors';

/** Partner delivery workflows (`partner-delivery:<provider>:<deliveryId>`), told of each change of their delivery. */

/**
 * An active mapping starts (or signals) its workflow; an ended one only signals, and a delivery that
 * has ended never starts again. The workflow pushes to the provider or, for one that pulls, records.
 */
export async function signalPartnerDelivery(
  client: Client,
  mapping: ProviderMappingReplica,
  snapshot: DeliverySnapshot,
  opts: { pushIntervalMs: number; taskQueue?: string },
): Promise<void> {
  const workflowId = workflowIds.partnerDelivery(mapping.provider, mapping.deliveryId);
  try {
    if (mapping.endedAt !== null || mapping.providerVehicleId === null) {
      await client.workflow.getHandle(workflowId).signal(deliverySnapshotSignal, snapshot);
      return;
    }
    await client.workflow.signalWithStart(partnerDeliveryWorkflow, {
      workflowId,
      taskQueue: opts.taskQueue ?? taskQueues.fleet,
      args: [
        {
          provider: mapping.provider,
          deliveryId: mapping.deliveryId,
          serial: mapping.serial,
          providerVehicleId: mapping.providerVehicleId,
          dropoff: mapping.dropoff,
          pushIntervalMs: opts.pushIntervalMs,
          receives: partnerReceives(mapping.provider) ?? 'push',
        },
      ],
      signal: deliverySnapshotSignal,
      signalArgs: [snapshot],
      workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
      typedSearchAttributes: [{ key: searchAttributes.robotSerial, value: mapping.serial }],
    });
  } catch (error) {
    if (isWorkflowNotFound(error) || isAlreadyStarted(error)) return;
    throw error;
  }
}
