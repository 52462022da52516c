import type { Prisma } from '../infra/prisma';

/**
 * Robot messages that failed validation, kept with their reason for inspection (`rejected_messages`):
 * whole messages rejected, and heartbeats applied without a part (`applied`).
 */

export type RejectedMessage = { topic: string; payload: string; reason: string; receivedAt: number; applied?: boolean };

export async function storeRejected(prisma: Prisma, rejected: RejectedMessage[]): Promise<void> {
  if (rejected.length === 0) return;
  await prisma.rejectedMessage.createMany({
    data: rejected.map((r) => ({
      topic: storable(r.topic),
      payload: storable(r.payload),
      reason: storable(r.reason),
      receivedAt: new Date(r.receivedAt),
      serialNumber: serialOfTopic(r.topic),
      applied: r.applied ?? false,
    })),
  });
}

// PostgreSQL text holds no NUL, and a robot chooses its topic and its component names: one such
// character in a reason would fail the insert, and the ingest worker would retry it for ever.
const storable = (text: string) => text.replaceAll('\u0000', '\\u0000');

/** `robot/<serial>/...`: the serial as the topic gives it, if it is one. */
function serialOfTopic(topic: string): string | null {
  const m = /^robot\/([A-Za-z0-9_-]{1,64})\//.exec(topic);
  return m ? m[1] : null;
}

/** Deletes rejected messages received before `before`, a chunk per statement so no delete holds locks long; returns how many. */
export async function pruneRejectedMessages(prisma: Prisma, before: Date, chunk = 10_000): Promise<number> {
  let total = 0;
  for (;;) {
    const n = await prisma.$executeRaw`
      DELETE FROM rejected_messages WHERE id IN (SELECT id FROM rejected_messages WHERE received_at < ${before} ORDER BY received_at LIMIT ${chunk})`;
    total += n;
    if (n < chunk) return total;
  }
}

/** How many rejected messages are kept, for the /metrics gauge. */
export function countRejectedMessages(prisma: Prisma): Promise<number> {
  return prisma.rejectedMessage.count();
}

/** A kept rejected message as the API shows it; `id` orders them and pages by cursor. */
export type KeptRejectedMessage = { id: bigint; topic: string; serial: string | null; payload: string; reason: string; applied: boolean; receivedAt: Date };

/** Rejected messages after `after` (from the first without it) in id order, at most `limit`; `serial`: its robot's only. */
export async function readRejectedMessages(prisma: Prisma, after: bigint | undefined, filter: { serial?: string }, limit: number): Promise<KeptRejectedMessage[]> {
  const rows = await prisma.rejectedMessage.findMany({
    where: { id: after === undefined ? undefined : { gt: after }, serialNumber: filter.serial },
    orderBy: { id: 'asc' },
    take: limit,
  });
  return rows.map((r) => ({ id: r.id, topic: r.topic, serial: r.serialNumber, payload: r.payload, reason: r.reason, applied: r.applied, receivedAt: r.receivedAt }));
}
