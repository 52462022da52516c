import type { Prisma } from '../infra/prisma';
import type { DomainEvent, EventDraft } from '../domain/events';
import type { CommandRecord } from '../domain/commands';
import {
  guardStatus,
  isLocked,
  judgePin,
  lidCycleCompletedEvent,
  lidCycleStartedEvent,
  lidCycleTimeoutEvent,
  openGuard,
  pinEntryEvents,
  registerPinOutcome,
  type ActivePin,
  type LidCycleFacts,
  type LidCycleStatus,
  type LockoutPolicy,
  type PinEntrySource,
  type PinFlow,
  type PinGuard,
  type PinOutcome,
  type PinType,
} from '../domain/lid';
import { commandFromRow, commandRow } from './commands';

/**
 * The Lid Service's tables (seed 001: active_unlock_pins, pin_entries, lid_cycles, plus the
 * keypad's lockout). Every write is safe to repeat: keypad entries are keyed by the robot's
 * timestamp, cycles by their id, events by ids the workflows chose.
 */

type Tx = Parameters<Parameters<Prisma['$transaction']>[0]>[0];

const date = (ms: number | null) => (ms === null ? null : new Date(ms));

function eventRows(drafts: EventDraft[], ids: string[]) {
  return drafts.map((d, i) => {
    const e: DomainEvent = { ...d, id: ids[i] };
    return { id: e.id, type: e.type, serial: e.serial, occurredAt: new Date(e.occurredAt), data: e.data as object };
  });
}

// ---- unlock PINs

export type SetPinInput = { serial: string; pinHash: string; pinType: PinType; contextId: string | null; expiresAt: number; flow: PinFlow };

export async function setUnlockPin(prisma: Prisma, pin: SetPinInput): Promise<void> {
  const data = { pinHash: pin.pinHash, pinType: pin.pinType, contextId: pin.contextId, expiresAt: new Date(pin.expiresAt), flow: pin.flow, createdAt: new Date() };
  await prisma.activeUnlockPin.upsert({ where: { serialNumber: pin.serial }, create: { serialNumber: pin.serial, ...data }, update: data });
}

/** The flow of the PIN that was cleared, or null when there was none. */
export async function clearUnlockPin(prisma: Prisma, serial: string): Promise<PinFlow | null> {
  const [row] = await prisma.$queryRaw<{ flow: PinFlow }[]>`DELETE FROM active_unlock_pins WHERE serial_number = ${serial} RETURNING flow`;
  return row?.flow ?? null;
}

/** What the API may show of a robot's PIN: never the PIN, nor its hash. */
export async function readUnlockPin(prisma: Prisma, serial: string, policy: LockoutPolicy, now: number) {
  const [pin, lockout] = await Promise.all([
    prisma.activeUnlockPin.findUnique({ where: { serialNumber: serial } }),
    prisma.pinLockout.findUnique({ where: { serialNumber: serial } }),
  ]);
  return {
    activePin: pin && {
      pinType: pin.pinType as PinType,
      contextId: pin.contextId,
      flow: pin.flow as PinFlow,
      expiresAt: pin.expiresAt.toISOString(),
      expired: pin.expiresAt.getTime() <= now,
      setAt: pin.createdAt.toISOString(),
    },
    lockout: guardStatus(toGuard(lockout), now, policy),
  };
}

function toGuard(row: { failedAttempts: number; windowStartedAt: Date | null; lockedUntil: Date | null } | null): PinGuard {
  if (!row) return openGuard;
  return { failedAttempts: row.failedAttempts, windowStartedAt: row.windowStartedAt?.getTime() ?? null, lockedUntil: row.lockedUntil?.getTime() ?? null };
}

// ---- PIN entries

export type PinEntryInput = {
  entryId: string;
  serial: string;
  source: PinEntrySource;
  pinHash: string;
  /** Robot clock of a keypad entry; null for the API. */
  robotTimestamp: number | null;
  /** Server clock: what expiry and lockout are judged by. */
  at: number;
  policy: LockoutPolicy;
  /** The UNLOCK_LID command a right PIN issues (keypad entries), accepted in the same transaction. */
  unlock: { commandId: string; timeoutMs: number } | null;
  /** Ids for the events the entry may raise (at most two). */
  eventIds: [string, string];
};

export type PinEntryResult = {
  entryId: string;
  /** The robot's timestamp was already recorded by another entry: a redelivered heartbeat. */
  duplicate: boolean;
  outcome: PinOutcome;
  pinType: PinType | null;
  contextId: string | null;
  lockedUntil: number | null;
  unlockCommand: CommandRecord | null;
};

/**
 * Judges one PIN entry and records it with its events, and for a right keypad PIN the UNLOCK_LID
 * command, all in one transaction serialised per robot. Run twice with the same entry id, it
 * answers what it answered the first time.
 */
export async function judgePinEntry(prisma: Prisma, input: PinEntryInput): Promise<PinEntryResult> {
  return prisma.$transaction(async (tx) => {
    await tx.$executeRaw`SELECT pg_advisory_xact_lock(hashtextextended(${`pin-entry:${input.serial}`}, 0))`;
    const previous = await tx.pinEntry.findFirst({
      where:
        input.robotTimestamp === null
          ? { id: input.entryId }
          : { serialNumber: input.serial, robotTimestamp: new Date(input.robotTimestamp) },
    });
    if (previous) return answerAgain(tx, previous, previous.id !== input.entryId);

    const guard = toGuard(await tx.pinLockout.findUnique({ where: { serialNumber: input.serial } }));
    const row = await tx.activeUnlockPin.findUnique({ where: { serialNumber: input.serial } });
    const active: ActivePin | null = row && { pinHash: row.pinHash, pinType: row.pinType as PinType, contextId: row.contextId, expiresAt: row.expiresAt.getTime() };
    const outcome: PinOutcome = isLocked(guard, input.at) ? 'LOCKED' : judgePin(active, input.pinHash, input.at);
    const next = registerPinOutcome(guard, outcome, input.at, input.policy);
    const matched = outcome === 'VALID' || outcome === 'EXPIRED';

    const lockout = { failedAttempts: next.guard.failedAttempts, windowStartedAt: date(next.guard.windowStartedAt), lockedUntil: date(next.guard.lockedUntil), updatedAt: new Date() };
    await tx.pinLockout.upsert({ where: { serialNumber: input.serial }, create: { serialNumber: input.serial, ...lockout }, update: lockout });
    await tx.pinEntry.create({
      data: {
        id: input.entryId,
        serialNumber: input.serial,
        source: input.source,
        robotTimestamp: date(input.robotTimestamp),
        enteredPinHash: input.pinHash,
        expectedPinHash: active?.pinHash ?? null,
        pinType: matched ? active!.pinType : null,
        contextId: matched ? active!.contextId : null,
        outcome,
        success: outcome === 'VALID',
        enteredAt: new Date(input.at),
      },
    });

    let unlockCommand: CommandRecord | null = null;
    if (outcome === 'VALID' && input.unlock) {
      unlockCommand = {
        commandId: input.unlock.commandId,
        serial: input.serial,
        type: 'UNLOCK_LID',
        parameters: active!.contextId ? { contextId: active!.contextId } : {},
        issuedAt: input.at,
        expiresAt: input.at + input.unlock.timeoutMs,
        requestId: null,
        source: 'PIN_ENTRY',
        contextId: active!.contextId,
        pinEntryId: input.entryId,
      };
      await tx.deviceCommand.createMany({ data: [commandRow(unlockCommand)], skipDuplicates: true });
    }

    const drafts = pinEntryEvents(
      {
        entryId: input.entryId,
        serial: input.serial,
        source: input.source,
        outcome,
        at: input.at,
        pinType: outcome === 'VALID' ? active!.pinType : null,
        contextId: outcome === 'VALID' ? active!.contextId : null,
        unlockCommandId: unlockCommand?.commandId ?? null,
        guard: next.guard,
        lockedNow: next.lockedNow,
      },
      input.policy,
    );
    await tx.domainEvent.createMany({ data: eventRows(drafts, input.eventIds), skipDuplicates: true });
    return {
      entryId: input.entryId,
      duplicate: false,
      outcome,
      pinType: outcome === 'VALID' ? active!.pinType : null,
      contextId: outcome === 'VALID' ? active!.contextId : null,
      lockedUntil: isLocked(next.guard, input.at) ? next.guard.lockedUntil : null,
      unlockCommand,
    };
  });
}

async function answerAgain(
  tx: Tx,
  entry: { id: string; serialNumber: string; outcome: string; pinType: string | null; contextId: string | null; enteredAt: Date },
  duplicate: boolean,
): Promise<PinEntryResult> {
  const [command, lockout] = await Promise.all([
    duplicate ? null : tx.deviceCommand.findFirst({ where: { pinEntryId: entry.id } }),
    tx.pinLockout.findUnique({ where: { serialNumber: entry.serialNumber } }),
  ]);
  const guard = toGuard(lockout);
  const valid = entry.outcome === 'VALID';
  return {
    entryId: entry.id,
    duplicate,
    outcome: entry.outcome as PinOutcome,
    pinType: valid ? (entry.pinType as PinType) : null,
    contextId: valid ? entry.contextId : null,
    lockedUntil: isLocked(guard, entry.enteredAt.getTime()) ? guard.lockedUntil : null,
    unlockCommand: command && commandFromRow(command),
  };
}

// ---- lid cycles

export type OpenLidCycleInput = {
  cycleId: string;
  serial: string;
  /** Robot clock of the first heartbeat with the lid open. */
  openedAt: number;
  /** Server clock of that heartbeat. */
  receivedAt: number;
  /** Unlock commands issued after this (server clock) and before the opening explain it. */
  unlockSince: number;
  timeoutMs: number;
  eventId: string;
};

/**
 * Records a cycle (INIT) with the unlock that explains it (its context, its PIN type) or as forced,
 * links the PIN entries that led to it, and records `LidCycle.Started`; once, however often run.
 */
export async function openLidCycle(prisma: Prisma, input: OpenLidCycleInput): Promise<LidCycleFacts> {
  return prisma.$transaction(async (tx) => {
    const existing = await tx.lidCycle.findUnique({ where: { cycleId: input.cycleId } });
    if (existing) return cycleFacts(existing);
    const unlock = await tx.deviceCommand.findFirst({
      where: {
        serialNumber: input.serial,
        commandType: 'UNLOCK_LID',
        status: { not: 'FAILED' },
        issuedAt: { gt: new Date(input.unlockSince), lte: new Date(input.receivedAt) },
      },
      orderBy: { issuedAt: 'desc' },
    });
    const entry = unlock?.pinEntryId ? await tx.pinEntry.findUnique({ where: { id: unlock.pinEntryId } }) : null;
    const facts: LidCycleFacts = {
      cycleId: input.cycleId,
      serial: input.serial,
      contextId: unlock?.contextId ?? null,
      pinType: (entry?.pinType as PinType | null | undefined) ?? null,
      forced: unlock === null,
      unlockCommandId: unlock?.commandId ?? null,
      startedAt: input.openedAt,
    };
    await tx.lidCycle.create({
      data: {
        cycleId: facts.cycleId,
        serialNumber: facts.serial,
        contextId: facts.contextId,
        pinType: facts.pinType,
        forced: facts.forced,
        unlockCommandId: facts.unlockCommandId,
        status: 'INIT',
        startedAt: new Date(facts.startedAt),
        timeoutSeconds: input.timeoutMs / 1000,
      },
    });
    await tx.pinEntry.updateMany({
      where: { serialNumber: input.serial, cycleId: null, enteredAt: { gt: new Date(input.unlockSince), lte: new Date(input.receivedAt) } },
      data: { cycleId: input.cycleId },
    });
    await tx.domainEvent.createMany({ data: eventRows([lidCycleStartedEvent(facts)], [input.eventId]), skipDuplicates: true });
    return facts;
  });
}

type CycleRow = NonNullable<Awaited<ReturnType<Prisma['lidCycle']['findUnique']>>>;

function cycleFacts(row: CycleRow): LidCycleFacts {
  return {
    cycleId: row.cycleId,
    serial: row.serialNumber,
    contextId: row.contextId,
    pinType: row.pinType as PinType | null,
    forced: row.forced,
    unlockCommandId: row.unlockCommandId,
    startedAt: row.startedAt.getTime(),
  };
}

export type FinishLidCycleInput = {
  cycleId: string;
  status: Exclude<LidCycleStatus, 'INIT'>;
  /** Robot clock when the lid closed; null for a timeout with the lid still open. */
  endedAt: number | null;
  timeoutMs: number;
  eventId: string;
};

/** INIT -> COMPLETE or TIMEOUT with its event, once: a cycle that has left INIT is left alone. */
export async function finishLidCycle(prisma: Prisma, input: FinishLidCycleInput): Promise<void> {
  await prisma.$transaction(async (tx) => {
    const row = await tx.lidCycle.findUnique({ where: { cycleId: input.cycleId } });
    if (!row || row.status !== 'INIT') return;
    await tx.lidCycle.update({ where: { cycleId: input.cycleId }, data: { status: input.status, endedAt: date(input.endedAt), updatedAt: new Date() } });
    const facts = cycleFacts(row);
    const event =
      input.status === 'COMPLETE'
        ? lidCycleCompletedEvent(facts, input.endedAt!)
        : lidCycleTimeoutEvent(facts, facts.startedAt + input.timeoutMs, input.timeoutMs);
    await tx.domainEvent.createMany({ data: eventRows([event], [input.eventId]), skipDuplicates: true });
  });
}

/** A timed-out cycle still learns when the lid finally closed. */
export async function recordLidClosed(prisma: Prisma, input: { cycleId: string; endedAt: number }): Promise<void> {
  await prisma.lidCycle.updateMany({ where: { cycleId: input.cycleId, endedAt: null }, data: { endedAt: new Date(input.endedAt), updatedAt: new Date() } });
}

/** The projection's lid: open or not, and the robot time it last changed. */
export async function readLid(prisma: Prisma, serial: string): Promise<{ isOpen: boolean; changedAt: number | null } | null> {
  const row = await prisma.device.findUnique({ where: { serialNumber: serial }, select: { lidIsOpen: true, lidUpdatedAt: true } });
  return row && { isOpen: row.lidIsOpen, changedAt: row.lidUpdatedAt?.getTime() ?? null };
}

// ---- the API's reads of lid cycles

/** A cycle with the PIN entries that led to it, oldest first. */
export type LidCycleRow = CycleRow & {
  pinEntries: { id: string; source: string; enteredAt: Date; outcome: string; success: boolean; pinType: string | null }[];
};

/** A robot's cycles, newest first, from after the given one (keyset paging on startedAt, cycleId). */
export async function listLidCycles(
  prisma: Prisma,
  serial: string,
  page: { after: { startedAt: Date; cycleId: string } | undefined; take: number },
): Promise<LidCycleRow[]> {
  const after = page.after;
  return prisma.lidCycle.findMany({
    where: {
      serialNumber: serial,
      ...(after && {
        OR: [{ startedAt: { lt: after.startedAt } }, { startedAt: after.startedAt, cycleId: { lt: after.cycleId } }],
      }),
    },
    orderBy: [{ startedAt: 'desc' }, { cycleId: 'desc' }],
    take: page.take,
    include: { pinEntries: { orderBy: { enteredAt: 'asc' } } },
  });
}

export async function readLidCycle(prisma: Prisma, cycleId: string): Promise<LidCycleRow | null> {
  return prisma.lidCycle.findUnique({ where: { cycleId }, include: { pinEntries: { orderBy: { enteredAt: 'asc' } } } });
}
