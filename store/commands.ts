import type { Prisma } from '../infra/prisma';
import { advanceCommand, type CommandRecord, type CommandStatus } from '../domain/commands';

/**
 * Commands to robots (`device_commands`): a row per command, PENDING when accepted, moved forward
 * by the command workflow as the robot acknowledges it. The MQTT publish is activities/commands.ts.
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

// ---- the API's reads

export async function readCommand(prisma: Prisma, commandId: string): Promise<CommandRow | null> {
  return prisma.deviceCommand.findUnique({ where: { commandId } });
}

/** A command acceptCommand has stored: its absence is a fault, not a 404. */
export async function readAcceptedCommand(prisma: Prisma, commandId: string): Promise<CommandRow> {
  return prisma.deviceCommand.findUniqueOrThrow({ where: { commandId } });
}

/** Commands and PINs are only for robots the projection knows. */
export async function robotExists(prisma: Prisma, serial: string): Promise<boolean> {
  const device = await prisma.device.findUnique({ where: { serialNumber: serial }, select: { serialNumber: true } });
  return device !== null;
}

// ---- commands rows (shared with store/lid.ts)

export function commandRow(c: CommandRecord) {
  return {
    commandId: c.commandId,
    serialNumber: c.serial,
    commandType: c.type,
    parameters: c.parameters,
    requestId: c.requestId,
    source: c.source,
    contextId: c.contextId,
    pinEntryId: c.pinEntryId,
    status: 'PENDING',
    issuedAt: new Date(c.issuedAt),
    expiresAt: new Date(c.expiresAt),
  };
}

export type CommandRow = NonNullable<Awaited<ReturnType<Prisma['deviceCommand']['findUnique']>>>;

export function commandFromRow(row: CommandRow): CommandRecord {
  return {
    commandId: row.commandId,
    serial: row.serialNumber,
    type: row.commandType as CommandRecord['type'],
    parameters: row.parameters as Record<string, string>,
    issuedAt: row.issuedAt.getTime(),
    expiresAt: row.expiresAt.getTime(),
    requestId: row.requestId,
    source: row.source as CommandRecord['source'],
    contextId: row.contextId,
    pinEntryId: row.pinEntryId,
  };
}
