import { z } from 'zod';
import { describeZodError, serialSchema } from './heartbeat';
import { ackStatuses, type CommandRecord } from './command-status';

/**
 * Commands to robots (CONTRACT.md "MQTT"): published on `robot/<serial>/command`, acknowledged on
 * `robot/<serial>/command/ack`, and tracked PENDING -> SENT -> ACKNOWLEDGED -> EXECUTED | FAILED,
 * or TIMEOUT when the robot has not executed it by `expiresAt`. A status never moves backwards, so
 * acks that arrive late, twice or out of order change nothing.
 */

export {
  ackStatuses,
  advanceCommand,
  commandStatuses,
  commandTypes,
  isFinal,
  type CommandRecord,
  type CommandSource,
  type CommandStatus,
  type CommandType,
} from './command-status';

export const commandAckSchema = z.object({
  commandId: z.uuid(),
  status: z.enum(ackStatuses),
  // PostgreSQL text holds no NUL: such a message could never be recorded, and would wedge the command.
  message: z.string().max(1000).refine((m) => !m.includes('\u0000'), 'must not contain NUL (\\u0000) characters').optional(),
});
export type CommandAck = z.infer<typeof commandAckSchema>;

/** The message on `robot/<serial>/command`; times are epoch milliseconds, like the heartbeat's. */
export function commandMessage(c: CommandRecord, parameters: Record<string, string>) {
  return { commandId: c.commandId, type: c.type, parameters, issuedAt: c.issuedAt, expiresAt: c.expiresAt };
}

export const commandTopic = (serial: string) => `robot/${serial}/command`;
export const ACK_TOPIC_FILTER = 'robot/+/command/ack';

export type AckParseResult = { ok: true; serial: string; ack: CommandAck } | { ok: false; reason: string };

/** Parses one message from `robot/<serial>/command/ack`; never throws. */
export function parseCommandAck(topic: string, payload: Buffer | string): AckParseResult {
  const m = /^robot\/([^/]+)\/command\/ack$/.exec(topic);
  if (!m || !serialSchema.safeParse(m[1]).success) return { ok: false, reason: `topic: "${topic}" is not robot/<serial>/command/ack` };
  if (payload.length > 4096) return { ok: false, reason: 'payload: over the 4096-byte limit' };
  let json: unknown;
  try {
    json = JSON.parse(payload.toString());
  } catch {
    return { ok: false, reason: 'payload: not valid JSON' };
  }
  const parsed = commandAckSchema.safeParse(json);
  if (!parsed.success) return { ok: false, reason: describeZodError(parsed.error) };
  return { ok: true, serial: m[1], ack: parsed.data };
}
