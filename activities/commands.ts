import type { MqttClient } from 'mqtt';
import type { Prisma } from '../infra/prisma';
import { advanceCommand, commandMessage, commandTopic, type CommandRecord, type CommandStatus } from '../domain/commands';
import { pinHashSecret, unseal } from '../domain/lid-pins';
import { commandFromRow, commandRow } from './lid';

/**
 * Commands to robots: the device_commands row, and the MQTT publish. The command workflow calls
 * these; the API accepts a command with `acceptCommand` before it starts that workflow.
 */

/** Stores the command as PENDING unless it is there already; answers the stored one. */
export async function acceptCommand(prisma: Prisma, command: CommandRecord): Promise<CommandRecord> {
  await prisma.deviceCommand.createMany({ data: [commandRow(command)], skipDuplicates: true });
  const row =
    (await prisma.deviceCommand.findUnique({ where: { commandId: command.commandId } })) ??
    (command.requestId === null
      ? null
      : await prisma.deviceCommand.findFirst({ where: { serialNumber: command.serial, requestId: command.requestId } }));
  if (!row) throw new Error(`command ${command.commandId} was neither stored nor found`);
  return commandFromRow(row);
}

export type StatusUpdate = { commandId: string; status: CommandStatus; message: string | null; at: number };

/** Moves the row forward only (domain/commands.ts), stamping when each status was reached. */
export async function recordCommandStatus(prisma: Prisma, update: StatusUpdate): Promise<CommandStatus | null> {
  return prisma.$transaction(async (tx) => {
    const row = await tx.deviceCommand.findUnique({ where: { commandId: update.commandId } });
    if (!row) return null;
    const current = row.status as CommandStatus;
    const next = advanceCommand(current, update.status);
    if (next === current) return current;
    const at = new Date(update.at);
    await tx.deviceCommand.update({
      where: { commandId: update.commandId },
      data: {
        status: next,
        message: update.message ?? row.message,
        sentAt: next === 'SENT' ? at : row.sentAt,
        acknowledgedAt: next === 'ACKNOWLEDGED' ? at : row.acknowledgedAt,
        completedAt: ['EXECUTED', 'FAILED', 'TIMEOUT'].includes(next) ? at : row.completedAt,
        updatedAt: new Date(),
      },
    });
    return next;
  });
}

export type PublishInput = { command: CommandRecord; sealed: string | null };

/**
 * Publishes the command (QoS 1) and marks it SENT. Run again after a crash it publishes again
 * with the same commandId, which the robot ignores; past `expiresAt` it publishes nothing.
 */
export async function publishCommand(
  deps: { prisma: Prisma; mqtt?: MqttClient; pinSecret?: string },
  { command, sealed }: PublishInput,
): Promise<{ sent: boolean; sentAt: number | null }> {
  if (Date.now() >= command.expiresAt) return { sent: false, sentAt: null };
  if (!deps.mqtt) throw new Error('no MQTT client: ActivityDeps.mqtt is required to send commands');
  const parameters = sealed ? { ...command.parameters, ...unseal(pinHashSecret({ PIN_HASH_SECRET: deps.pinSecret }), sealed) } : command.parameters;
  await deps.mqtt.publishAsync(commandTopic(command.serial), JSON.stringify(commandMessage(command, parameters)), { qos: 1 });
  const sentAt = Date.now();
  await recordCommandStatus(deps.prisma, { commandId: command.commandId, status: 'SENT', message: null, at: sentAt });
  return { sent: true, sentAt };
}

export function createCommandActivities(deps: { prisma: Prisma; mqtt?: MqttClient; pinSecret?: string }) {
  return {
    acceptCommand: (command: CommandRecord) => acceptCommand(deps.prisma, command),
    publishCommand: (input: PublishInput) => publishCommand(deps, input),
    recordCommandStatus: (update: StatusUpdate) => recordCommandStatus(deps.prisma, update),
  };
}
