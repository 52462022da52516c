import type { Client } from 'pg';
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

// Any constant works; it is the one key publishers agree on (migrate.ts and the seq trigger use others).
const PUBLISHER_LOCK = 7270736903;

const CLAIM_SQL = `
  SELECT e.seq, e.id, e.type, e.serial, e.occurred_at, e.data
  FROM event_outbox o JOIN domain_events e ON e.seq = o.seq
  ORDER BY o.seq
  LIMIT $1
  FOR UPDATE OF o SKIP LOCKED`;

type OutboxRow = { seq: string; id: string; type: string; serial: string | null; occurred_at: Date; data: Record<string, unknown> | null };

export type OutboxBatch = { claimed: number; confirmed: number; error: Error | null };

/**
 * One batch of the outbox publisher (outbox/publisher.ts) on its own connection, in one
 * transaction: claims the oldest listed events (FOR UPDATE SKIP LOCKED), hands them to `publish`,
 * and removes from the list the leading `confirmed` of them before committing. The advisory lock
 * lets one publisher's transaction at a time through; the others claim nothing.
 */
export async function publishOutboxBatch(
  pg: Client,
  limit: number,
  publish: (events: StoredEvent[]) => Promise<{ confirmed: number; error: Error | null }>,
): Promise<OutboxBatch> {
  await pg.query('BEGIN');
  try {
    const lead = await pg.query<{ ok: boolean }>('SELECT pg_try_advisory_xact_lock($1) AS ok', [PUBLISHER_LOCK]);
    if (!lead.rows[0].ok) {
      await pg.query('ROLLBACK');
      return { claimed: 0, confirmed: 0, error: null }; // another publisher is at it
    }
    const { rows } = await pg.query<OutboxRow>(CLAIM_SQL, [limit]);
    if (rows.length === 0) {
      await pg.query('COMMIT');
      return { claimed: 0, confirmed: 0, error: null };
    }
    const events = rows.map(toOutboxEvent);
    const { confirmed, error } = await publish(events);
    if (confirmed > 0) {
      await pg.query('DELETE FROM event_outbox WHERE seq = ANY($1::bigint[])', [events.slice(0, confirmed).map((e) => String(e.seq))]);
    }
    await pg.query('COMMIT');
    return { claimed: rows.length, confirmed, error };
  } catch (error) {
    await pg.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}

function toOutboxEvent(row: OutboxRow): StoredEvent {
  return {
    seq: BigInt(row.seq),
    id: row.id,
    type: row.type,
    serial: row.serial,
    occurredAt: row.occurred_at.toISOString(),
    data: row.data ?? {},
  };
}
