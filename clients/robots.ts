import { WorkflowIdReusePolicy, type Client } from '@temporalio/client';
import type { Heartbeat } from '../domain/heartbeat';
import type { LidSettings } from '../domain/lid';
import type { RobotState } from '../domain/robot-state';
import type { SilentRobot } from '../domain/silence';
import type { FleetFactsUpdate } from '../domain/fleet-status';
import type { DriveuReport } from '../domain/driveu-state';
import { searchAttributes, taskQueues, workflowIds } from '../temporal.config';
import { driveuSignal, fleetFactsQuery, fleetFactsSignal, heartbeatsSignal, robotStateQuery, robotWorkflow, silenceSignal, type RobotWorkflowInput } from '../workflows/robot';
import { isWorkflowNotFound } from './errors';

/**
 * The robot workflow (`robot:<serial>`) as its callers see it: the ingest signals heartbeats and
 * silences, the API signals facts and DriveU reports and asks for the live state. Whoever signals
 * first starts it (signal-with-start), always with the same options, written once here.
 */

/** What a robot workflow starts with: from configuration (lidSettings, OFFLINE_AFTER_SECONDS). */
export type RobotStart = { offlineAfterMs: number; lid: LidSettings; taskQueue?: string };

function startOptions(start: RobotStart, serial: string) {
  return {
    workflowId: workflowIds.robot(serial),
    taskQueue: start.taskQueue ?? taskQueues.fleet,
    args: [{ serial, offlineAfterMs: start.offlineAfterMs, lid: start.lid }] as [RobotWorkflowInput],
    workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
    typedSearchAttributes: [
      { key: searchAttributes.robotSerial, value: serial },
      { key: searchAttributes.online, value: false },
      { key: searchAttributes.fleetStatus, value: 'OFFLINE' },
    ],
  };
}

export async function signalHeartbeats(client: Client, start: RobotStart, serial: string, heartbeats: Heartbeat[]): Promise<void> {
  await client.workflow.signalWithStart(robotWorkflow, { ...startOptions(start, serial), signal: heartbeatsSignal, signalArgs: [{ heartbeats }] });
}

export async function signalFleetFacts(client: Client, start: RobotStart, serial: string, update: FleetFactsUpdate): Promise<void> {
  await client.workflow.signalWithStart(robotWorkflow, { ...startOptions(start, serial), signal: fleetFactsSignal, signalArgs: [update] });
}

export async function signalDriveuReport(client: Client, start: RobotStart, serial: string, report: DriveuReport): Promise<void> {
  await client.workflow.signalWithStart(robotWorkflow, { ...startOptions(start, serial), signal: driveuSignal, signalArgs: [report] });
}

/** The silence sweeper's nudge: a plain signal, so a robot without a workflow gets none started. */
export async function nudgeSilentRobot(client: Client, robot: SilentRobot): Promise<'nudged' | 'no-workflow'> {
  try {
    await client.workflow.getHandle(workflowIds.robot(robot.serial)).signal(silenceSignal, { lastSeenAt: robot.lastSeenAt });
    return 'nudged';
  } catch (error) {
    if (isWorkflowNotFound(error)) return 'no-workflow';
    throw error;
  }
}

/** The workflow's live state; null when the robot has no workflow. */
export async function readRobotState(client: Client, serial: string, timeoutMs: number): Promise<RobotState | null> {
  try {
    return await client.withDeadline(Date.now() + timeoutMs, () => client.workflow.getHandle(workflowIds.robot(serial)).query(robotStateQuery));
  } catch (error) {
    if (isWorkflowNotFound(error)) return null;
    throw error;
  }
}

/** The workflow's live state and the version of the facts it holds; null when the robot has no workflow. */
export async function readLiveRobot(client: Client, serial: string, timeoutMs: number): Promise<{ state: RobotState; factsVersion: number | null } | null> {
  try {
    return await client.withDeadline(Date.now() + timeoutMs, async () => {
      const handle = client.workflow.getHandle(workflowIds.robot(serial));
      const [state, facts] = await Promise.all([handle.query(robotStateQuery), handle.query(fleetFactsQuery)]);
      return { state, factsVersion: facts?.version ?? null };
    });
  } catch (error) {
    if (isWorkflowNotFound(error)) return null;
    throw error;
  }
}
