import { PrismaPg } from '@prisma/adapter-pg';
import { PrismaClient } from '../generated/prisma/client';

export type Prisma = InstanceType<typeof PrismaClient>;

export function createPrisma(databaseUrl: string, maxConnections = 10): Prisma {
  return new PrismaClient({ adapter: new PrismaPg({ connectionString: databaseUrl, max: maxConnections }) });
}
