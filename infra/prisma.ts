import { PrismaPg } from '@prisma/adapter-pg';
import { PrismaClient } from '../generated/prisma/client';

export type Prisma = InstanceType<typeof PrismaClient>;

export function createPrisma(databaseUrl: string, maxConnections = 10): Prisma {
  // The adapter listens for a transaction connection's errors only once pool.connect() has resolved;
  // an error read before that (PostgreSQL stopping as the connection opens) would be an unhandled
  // 'error' event that ends the process. Its queries fail anyway, and the pool drops it.
  const onConnect = (client: { on(event: 'error', listener: () => void): unknown }) => void client.on('error', () => undefined);
  return new PrismaClient({ adapter: new PrismaPg({ connectionString: databaseUrl, max: maxConnections, onConnect }) });
}

/**
 * A row PostgreSQL returned as JSON (`to_json(t)`) in the shape Prisma gives the same row: keys
 * camelCased from their snake_case columns, and `*_at` columns, our timestamps, as Dates (test/unit
 * checks both rules against schema.prisma). One statement of JSON rows instead of a query per
 * relation is how the fleet list reads its page (store/fleet.ts).
 */
export function rowFromJson<T>(json: Record<string, unknown>): T {
  const row: Record<string, unknown> = {};
  for (const column in json) {
    const value = json[column];
    row[fieldOf(column)] = typeof value === 'string' && column.endsWith('_at') ? new Date(value) : value;
  }
  return row as T;
}

// Column names repeat on every row: each is camelCased once.
const fields = new Map<string, string>();
function fieldOf(column: string): string {
  let field = fields.get(column);
  if (field === undefined) {
    field = column.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
    fields.set(column, field);
  }
  return field;
}
