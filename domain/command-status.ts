/** A command's types and statuses and how a status advances (zod-free for the workflow bundle; see commands.ts). */

export const commandTypes = ['UNLOCK_LID', 'LOCK_LID', 'HONK', 'FLASH_LIGHTS', 'EMERGENCY_STOP', 'REBOOT', 'SET_PIN'] as const;
export type CommandType = (typeof commandTypes)[number];

export const commandStatuses = ['PENDING', 'SENT', 'ACKNOWLEDGED', 'EXECUTED', 'FAILED', 'TIMEOUT'] as const;
export type CommandStatus = (typeof commandStatuses)[number];

export const ackStatuses = ['ACKNOWLEDGED', 'EXECUTED', 'FAILED'] as const;

/** Who asked: the API, a validated keypad PIN, or setting an unlock PIN (Magic Lid). */
export type CommandSource = 'API' | 'PIN_ENTRY' | 'UNLOCK_PIN';

export type CommandRecord = {
  commandId: string;
  serial: string;
  type: CommandType;
  /** What the API and the database show; sealed values (a SET_PIN's pin) are not among them. */
  parameters: Record<string, string>;
  issuedAt: number;
  expiresAt: number;
  requestId: string | null;
  source: CommandSource;
  contextId: string | null;
  pinEntryId: string | null;
};

const rank: Record<CommandStatus, number> = { PENDING: 0, SENT: 1, ACKNOWLEDGED: 2, EXECUTED: 3, FAILED: 3, TIMEOUT: 3 };

export const isFinal = (status: CommandStatus) => rank[status] === 3;

/** The status after `next` is reported; unchanged when `next` is no step forward. */
export function advanceCommand(current: CommandStatus, next: CommandStatus): CommandStatus {
  return rank[next] > rank[current] ? next : current;
}
