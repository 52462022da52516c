import { Prisma as Sql } from '../generated/prisma/client';
import type { Prisma } from '../infra/prisma';
import type { DomainEvent } from '../domain/events';
import { pendingDeploymentView, type DeploymentView } from '../domain/rollout';

/**
 * The rollouts projection (`software_deployments`): each Greengrass rollout's view as its
 * deployment workflow last wrote it, for the API to list and to answer when the workflow cannot.
 */

/** The rollout's progress and its events, in one transaction; an older version never overwrites a newer one. */
export async function recordDeployment(prisma: Prisma, input: { view: DeploymentView; events: DomainEvent[] }): Promise<void> {
  const v = input.view;
  const completedAt = v.completedAt === null ? null : new Date(v.completedAt);
  await prisma.$transaction([
    prisma.$executeRaw`
      INSERT INTO software_deployments AS d (deployment_id, request_id, target_arn, status, phase, reason, view, version, created_at, updated_at, completed_at)
      VALUES (${v.deploymentId}, ${v.requestId}, ${v.targetArn}, ${v.status}, ${v.phase}, ${v.reason}, ${JSON.stringify(v)}::jsonb,
        ${v.version}, ${new Date(v.createdAt)}, ${new Date(v.updatedAt)}, ${completedAt})
      ON CONFLICT (deployment_id) DO UPDATE SET status = EXCLUDED.status, phase = EXCLUDED.phase, reason = EXCLUDED.reason,
        view = EXCLUDED.view, version = EXCLUDED.version, updated_at = EXCLUDED.updated_at, completed_at = EXCLUDED.completed_at
      WHERE d.version < EXCLUDED.version`,
    prisma.domainEvent.createMany({
      data: input.events.map((e) => ({ id: e.id, type: e.type, serial: e.serial, occurredAt: new Date(e.occurredAt), data: e.data as object })),
      skipDuplicates: true,
    }),
  ]);
}

export type PendingDeployment = Parameters<typeof pendingDeploymentView>[0];

/** A row at version 0, so that the list shows the rollout at once; the workflow's first write replaces it. */
export async function recordPendingDeployment(prisma: Prisma, input: PendingDeployment): Promise<boolean> {
  const view = pendingDeploymentView(input, input.createdAt, 0);
  const inserted = await prisma.$executeRaw`
    INSERT INTO software_deployments (deployment_id, request_id, target_arn, status, phase, view, version, created_at, updated_at)
    VALUES (${input.deploymentId}, ${input.requestId}, ${input.targetArn}, 'PENDING', 'RESOLVING_TARGET', ${JSON.stringify(view)}::jsonb, 0,
      ${new Date(input.createdAt)}, ${new Date(input.createdAt)})
    ON CONFLICT DO NOTHING`;
  return inserted === 1;
}

/** Takes back the version-0 row of a rollout whose workflow could not be started. */
export async function forgetPendingDeployment(prisma: Prisma, deploymentId: string): Promise<void> {
  await prisma.softwareDeployment.deleteMany({ where: { deploymentId, version: 0 } });
}

export async function readDeploymentStatus(prisma: Prisma, deploymentId: string): Promise<{ status: string } | null> {
  return prisma.softwareDeployment.findUnique({ where: { deploymentId }, select: { status: true } });
}

/** The rollout as its workflow last recorded it. */
export async function readProjectedDeployment(prisma: Prisma, deploymentId: string): Promise<{ status: string; view: DeploymentView } | null> {
  const row = await prisma.softwareDeployment.findUnique({ where: { deploymentId }, select: { status: true, view: true } });
  return row && { status: row.status, view: row.view as DeploymentView };
}

export type DeploymentRow = { view: DeploymentView; created_at: Date; deployment_id: string };

/** A page of rollouts, newest first, after the (createdAt, id) of the previous page's last; and how many match. */
export async function listDeployments(
  prisma: Prisma,
  query: { status?: string; after: { createdAt: string; id: string } | null; limit: number },
): Promise<{ rows: DeploymentRow[]; total: number }> {
  const { after } = query;
  const statusSql = query.status === undefined ? Sql.sql`TRUE` : Sql.sql`status = ${query.status}`;
  const afterSql = after === null ? Sql.sql`TRUE` : Sql.sql`(created_at, deployment_id) < (${after.createdAt}::timestamptz, ${after.id})`;
  const [rows, [{ total }]] = await Promise.all([
    prisma.$queryRaw<DeploymentRow[]>`
      SELECT view, created_at, deployment_id FROM software_deployments WHERE ${statusSql} AND ${afterSql}
      ORDER BY created_at DESC, deployment_id DESC LIMIT ${query.limit}`,
    prisma.$queryRaw<{ total: number }[]>`SELECT count(*)::int AS total FROM software_deployments WHERE ${statusSql}`,
  ]);
  return { rows, total };
}

/** What the canary check needs of each robot from the projection: online, and its components in CRITICAL_FAULT. */
export async function readCanaryDevices(
  prisma: Prisma,
  serials: string[],
): Promise<{ serialNumber: string; online: boolean; components: { componentName: string }[] }[]> {
  return prisma.device.findMany({
    where: { serialNumber: { in: serials } },
    select: { serialNumber: true, online: true, components: { where: { statusCode: 'CRITICAL_FAULT' }, select: { componentName: true } } },
  });
}
