import type { Prisma } from '../infra/prisma';

/** The readiness probe's question to PostgreSQL (api/health.ts): does it answer a query. */
export async function pingDatabase(prisma: Prisma): Promise<void> {
  await prisma.$queryRaw`SELECT 1`;
}
