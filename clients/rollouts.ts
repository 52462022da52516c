import type { Client } from '@temporalio/client';
import { parseTargetArn, type DeploymentView } from '../domain/rollout';
import { searchAttributes, taskQueues, workflowIds } from '../temporal.config';
import { cancelDeploymentSignal, deploymentProgressQuery, deploymentWorkflow, type DeploymentWorkflowInput } from '../workflows/deployment';
import { isAlreadyStarted, isWorkflowNotFound } from './errors';

/** Rollout workflows (`deployment:<deploymentId>`), started, followed and cancelled by the API. */

/** Starts the rollout once: a repeat finds the running one, and a finished one is never started again under its id. */
export async function startRollout(client: Client, input: DeploymentWorkflowInput, taskQueue?: string): Promise<'started' | 'already-started'> {
  const target = parseTargetArn(input.targetArn);
  try {
    await client.workflow.start(deploymentWorkflow, {
      taskQueue: taskQueue ?? taskQueues.fleet,
      workflowId: workflowIds.deployment(input.deploymentId),
      args: [input],
      workflowIdReusePolicy: 'REJECT_DUPLICATE',
      workflowIdConflictPolicy: 'USE_EXISTING',
      ...(target?.kind === 'thing' ? { typedSearchAttributes: [{ key: searchAttributes.robotSerial, value: target.name }] } : {}),
    });
    return 'started';
  } catch (error) {
    if (isAlreadyStarted(error)) return 'already-started';
    throw error;
  }
}

/** Asks the rollout to stop; 'no-workflow' when none runs under that id. */
export async function cancelRollout(client: Client, deploymentId: string, reason: string | undefined): Promise<'requested' | 'no-workflow'> {
  try {
    await client.workflow.getHandle(workflowIds.deployment(deploymentId)).signal(cancelDeploymentSignal, { reason });
    return 'requested';
  } catch (error) {
    if (isWorkflowNotFound(error)) return 'no-workflow';
    throw error;
  }
}

/** The running rollout's live view; null when none runs under that id. */
export async function readRolloutProgress(client: Client, deploymentId: string, timeoutMs: number): Promise<DeploymentView | null> {
  try {
    return await client.withDeadline(Date.now() + timeoutMs, () => client.workflow.getHandle(workflowIds.deployment(deploymentId)).query(deploymentProgressQuery));
  } catch (error) {
    if (isWorkflowNotFound(error)) return null;
    throw error;
  }
}
