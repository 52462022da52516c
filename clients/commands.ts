import { WorkflowIdConflictPolicy, WorkflowIdReusePolicy, type Client } from '@temporalio/client';
import type { CommandRecord } from '../domain/command-status';
import type { CommandAck } from '../domain/commands';
import { searchAttributes, taskQueues, workflowIds } from '../temporal.config';
import { commandAckSignal, commandWorkflow } from '../workflows/command';
import { isAlreadyStarted, isWorkflowNotFound } from './errors';

/** Command workflows (`command:<serial>:<commandId>`): started by the API, told the robot's acks by the ingest. */

/** Starts the command's workflow once; a repeat of a command whose workflow ran already changes nothing. */
export async function startCommand(client: Client, command: CommandRecord, opts: { sealed: string | null; taskQueue?: string }): Promise<void> {
  try {
    await client.workflow.start(commandWorkflow, {
      workflowId: workflowIds.command(command.serial, command.commandId),
      taskQueue: opts.taskQueue ?? taskQueues.fleet,
      args: [{ command, sealed: opts.sealed }],
      workflowIdConflictPolicy: WorkflowIdConflictPolicy.USE_EXISTING,
      workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
      typedSearchAttributes: [{ key: searchAttributes.robotSerial, value: command.serial }],
    });
  } catch (error) {
    // Its workflow ran and finished already: the first request's answer stands.
    if (!isAlreadyStarted(error)) throw error;
  }
}

/** A robot's ack to its command's workflow; an ack for a command no workflow follows any more is 'no-workflow'. */
export async function signalCommandAck(client: Client, serial: string, ack: CommandAck): Promise<'signalled' | 'no-workflow'> {
  try {
    await client.workflow.getHandle(workflowIds.command(serial, ack.commandId)).signal(commandAckSignal, ack);
    return 'signalled';
  } catch (error) {
    if (isWorkflowNotFound(error)) return 'no-workflow';
    throw error;
  }
}
