import { condition, defineQuery, defineSignal, proxyActivities, setHandler } from '@temporalio/workflow';
import type { createActivities } from '../activities';
import { advanceCommand, isFinal, type CommandRecord, type CommandStatus } from '../domain/command-status';
import type { CommandAck } from '../domain/commands';
import { timing } from '../temporal.config';

/**
 * One workflow per command (`command:<serial>:<commandId>`): accept it, publish it, follow the
 * robot's acks until EXECUTED or FAILED, or TIMEOUT at `expiresAt`. Temporal keeps it between
 * accept and send, so a worker that dies in between neither loses the command nor sends it twice
 * (a publish that is retried carries the same commandId, which the robot deduplicates).
 */

export type CommandWorkflowInput = {
  command: CommandRecord;
  /** Parameters that must not be readable in history (a SET_PIN's pin), sealed by domain/lid-pins.ts. */
  sealed?: string | null;
};

export const commandAckSignal = defineSignal<[CommandAck]>('commandAck');
export const commandStatusQuery = defineQuery<CommandStatus>('commandStatus');

const { acceptCommand, recordCommandStatus } = proxyActivities<ReturnType<typeof createActivities>>(timing.projectionActivity);
const { publishCommand } = proxyActivities<ReturnType<typeof createActivities>>(timing.mqttPublishActivity);

export async function commandWorkflow({ command, sealed }: CommandWorkflowInput): Promise<CommandStatus> {
  let status: CommandStatus = 'PENDING';
  const acks: CommandAck[] = [];
  setHandler(commandAckSignal, (ack) => {
    if (ack.commandId === command.commandId) acks.push(ack);
  });
  setHandler(commandStatusQuery, () => status);
  const record = async (next: CommandStatus, message: string | null) => {
    status = next;
    await recordCommandStatus({ commandId: command.commandId, status: next, message, at: Date.now() });
  };

  await acceptCommand(command);
  const { sent } = await publishCommand({ command, sealed: sealed ?? null });
  if (!sent) {
    await record('TIMEOUT', 'expired before it could be sent');
    return status;
  }
  status = 'SENT';

  while (!isFinal(status)) {
    const left = command.expiresAt - Date.now();
    const acked = left > 0 && (await condition(() => acks.length > 0, left));
    if (!acked) {
      await record('TIMEOUT', `not executed by ${new Date(command.expiresAt).toISOString()}`);
      break;
    }
    for (const ack of acks.splice(0)) {
      const next = advanceCommand(status, ack.status);
      if (next !== status) await record(next, ack.message ?? null);
    }
  }
  return status;
}
