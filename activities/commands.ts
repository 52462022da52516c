import type { MqttClient } from 'mqtt';
import type { Prisma } from '../infra/prisma';
import { commandMessage, commandTopic, type CommandRecord } from '../domain/commands';
import { pinHashSecret, unseal } from '../domain/lid-pins';
import { acceptCommand, recordCommandStatus, type StatusUpdate } from '../store/commands';

/**
 * Commands to robots: the MQTT publish here, the device_commands row in store/commands.ts. The
 * command workflow calls these; the API accepts a command with `acceptCommand` before it starts
 * that workflow.
 */

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
