import type { Client } from 'pg';
import type { Prisma } from '../infra/prisma';
import type { Heartbeat } from '../domain/heartbeat';

/**
 * The robot inbox (`robot_inbox`): heartbeats a robot workflow must see, stored with their batch so
 * the robots can be acknowledged on commit, whatever Temporal is doing. ingest/robot-inbox-relay.ts
 * signals them in id order and deletes them.
 */

/** Called inside the heartbeat batch's transaction (store/devices.ts storeHeartbeats). */
export async function queueForRobots(prisma: Pick<Prisma, '$executeRaw'>, heartbeats: Heartbeat[]): Promise<void> {
  if (heartbeats.length === 0) return;
  await prisma.$executeRaw`
    INSERT INTO robot_inbox (serial_number, heartbeat)
    SELECT * FROM unnest(${heartbeats.map((h) => h.serial)}::text[], ${heartbeats.map((h) => JSON.stringify(h))}::jsonb[])`;
}

/** Rows waiting and the age of the oldest: how far the robot workflows are behind the projection. */
export async function robotInboxBacklog(prisma: Prisma): Promise<{ rows: number; oldestSeconds: number }> {
  const [row] = await prisma.$queryRaw<{ rows: number; oldest: number | null }[]>`
    SELECT count(*)::int AS rows, EXTRACT(EPOCH FROM now() - min(created_at))::float8 AS oldest FROM robot_inbox`;
  return { rows: row.rows, oldestSeconds: Math.max(row.oldest ?? 0, 0) };
}

// Any constant works; it is the one key relays agree on (store/events.ts and migrate.ts use others).
const RELAY_LOCK = 7270736904;

export type RobotInboxRow = { id: string; serial_number: string; heartbeat: Heartbeat; age_ms: number };

const CLAIM_SQL = `
  SELECT id, serial_number, heartbeat, (EXTRACT(EPOCH FROM now() - created_at) * 1000)::float8 AS age_ms
  FROM robot_inbox ORDER BY id LIMIT $1`;

/**
 * One round of the relay (ingest/robot-inbox-relay.ts) on its own connection, in one transaction:
 * claims the oldest rows, hands them to `signal`, and deletes the rows whose ids it answers as
 * `done` before committing. Null when another relay holds the lock.
 */
export async function relayRobotInbox<R extends { done: string[] }>(
  pg: Client,
  limit: number,
  signal: (rows: RobotInboxRow[]) => Promise<R>,
): Promise<R | null> {
  await pg.query('BEGIN');
  try {
    const lead = await pg.query<{ ok: boolean }>('SELECT pg_try_advisory_xact_lock($1) AS ok', [RELAY_LOCK]);
    if (!lead.rows[0].ok) {
      await pg.query('ROLLBACK');
      return null;
    }
    const { rows } = await pg.query<RobotInboxRow>(CLAIM_SQL, [limit]);
    const signalled = await signal(rows);
    if (signalled.done.length > 0) await pg.query('DELETE FROM robot_inbox WHERE id = ANY($1::bigint[])', [signalled.done]);
    await pg.query('COMMIT');
    return signalled;
  } catch (error) {
    await pg.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}
