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
