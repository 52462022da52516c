import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { applyMigrations } from '../../infra/migrate';
import { required } from './fleet';

/** A fresh (by default migrated) database on the shared test server, for tests that need an empty one. */
export async function createTestDatabase(prefix = 'test', opts = { migrate: true }): Promise<{ url: string; drop(): Promise<void> }> {
  const adminUrl = required('TEST_DATABASE_ADMIN_URL');
  const name = `${prefix}_${randomBytes(6).toString('hex')}`;
  await adminQuery(adminUrl, `CREATE DATABASE ${name}`);
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  if (opts.migrate) await applyMigrations(url.toString());
  return { url: url.toString(), drop: () => adminQuery(adminUrl, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`) };
}

async function adminQuery(adminUrl: string, sql: string): Promise<void> {
  const client = new Client({ connectionString: adminUrl });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}
