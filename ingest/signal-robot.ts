import { WorkflowIdReusePolicy, WorkflowNotFoundError, type Client } from '@temporalio/client';
import type { Heartbeat } from '../domain/heartbeat';
import type { LidSettings } from '../domain/lid';
import type { SilentRobot } from '../domain/silence';
import { heartbeatsSignal, robotWorkflow, silenceSignal } from '../workflows/robot';
import type { NudgeResult } from './silence-sweeper';
import { searchAttributes, taskQueues, workflowIds } from '../temporal.config';

export type RobotSignaller = (serial: string, heartbeats: Heartbeat[]) => Promise<void>;

/** Signal-with-start: the first heartbeat of a robot starts its workflow. */
export function createRobotSignaller(client: Client, opts: { offlineAfterMs: number; taskQueue?: string; lid?: LidSettings }): RobotSignaller {
  return async (serial, heartbeats) => {
    await client.workflow.signalWithStart(robotWorkflow, {
      workflowId: workflowIds.robot(serial),
      taskQueue: opts.taskQueue ?? taskQueues.fleet,
      args: [{ serial, offlineAfterMs: opts.offlineAfterMs, lid: opts.lid }],
      signal: heartbeatsSignal,
      signalArgs: [{ heartbeats }],
      workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
      typedSearchAttributes: [
        { key: searchAttributes.robotSerial, value: serial },
        { key: searchAttributes.online, value: false },
        { key: searchAttributes.fleetStatus, value: 'OFFLINE' },
      ],
    });
  };
}

/** The silence sweeper's nudge: a plain signal, so a robot without a workflow gets none started. */
export function createSilenceNudger(client: Client): (robot: SilentRobot) => Promise<NudgeResult> {
  return async (robot) => {
    try {
      await client.workflow.getHandle(workflowIds.robot(robot.serial)).signal(silenceSignal, { lastSeenAt: robot.lastSeenAt });
      return 'nudged';
    } catch (error) {
      if (error instanceof WorkflowNotFoundError) return 'no-workflow';
      throw error;
    }
  };
}
