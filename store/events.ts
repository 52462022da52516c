import type { Prisma } from '../infra/prisma';
import type { DomainEvent } from '../domain/events';

/**
 * Domain events (`domain_events`), numbered by `seq` in commit order
 * (prisma/migrations/20261123040000_event_outbox), and the outbox (`event_outbox`): the events
 * RabbitMQ has not confirmed yet, which a trigger lists as each event is recorded.
 */

export type StoredEvent = DomainEvent & { seq: bigint };
export type EventFilter = { type?: string; serial?: string };

/** Events after `after` (from the first without it) in seq order, at most `limit`. */
export async function readEvents(prisma: Prisma, after: bigint | undefined, filter: EventFilter, limit: number): Promise<StoredEvent[]> {
  const rows = await prisma.domainEvent.findMany({
    where: { seq: after === undefined ? undefined : { gt: after }, type: filter.type, serial: filter.serial },
    orderBy: { seq: 'asc' },
    take: limit,
  });
  return rows.map((r) => ({
    seq: r.seq,
    id: r.id,
    type: r.type,
    serial: r.serial,
    occurredAt: r.occurredAt.toISOString(),
    data: (r.data ?? {}) as DomainEvent['data'],
  }));
}

export async function readLatestEventSeq(prisma: Prisma): Promise<bigint> {
  const row = await prisma.domainEvent.aggregate({ _max: { seq: true } });
  return row._max.seq ?? 0n;
}
