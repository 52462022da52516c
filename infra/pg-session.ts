import { Client } from 'pg';

/**
 * A PostgreSQL connection that a long-running loop keeps for itself (to LISTEN, or to hold a
 * transaction open across calls to other services), unconnected so its handlers are attached first.
 */
export type PgSession = Client;

export function pgSession(databaseUrl: string, applicationName: string): PgSession {
  return new Client({ connectionString: databaseUrl, keepAlive: true, application_name: applicationName });
}
