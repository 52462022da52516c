import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Client, Connection } from '@temporalio/client';
import pino from 'pino';
import { createApp } from '../../api/app';
import { loadConfig } from '../../config';
import { createPrisma, type Prisma } from '../../infra/prisma';
import { createTestDatabase } from '../support/database';
import { freePort } from '../../infra/ports';

/** The API on a fresh real database; Temporal is a client pointed at a port nobody listens on. */

export type ApiHarness = {
  url: string;
  prisma: Prisma;
  temporal: Client;
  get(path: string, key?: string): Promise<{ status: number; body: any; text: string; type: string | null }>;
  startApp(env: NodeJS.ProcessEnv): Promise<{ url: string; close(): Promise<void> }>;
  stop(): Promise<void>;
};

function listen(app: ReturnType<typeof createApp>): Promise<{ url: string; close(): Promise<void> }> {
  return new Promise((resolve) => {
    const server: Server = app.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      resolve({ url: `http://127.0.0.1:${port}`, close: () => new Promise((done) => server.close(() => done())) });
    });
  });
}

export async function startApiHarness(env: NodeJS.ProcessEnv): Promise<ApiHarness> {
  const database = await createTestDatabase('api');
  const servers: { close(): Promise<void> }[] = [];
  const prisma = createPrisma(database.url);
  // No gRPC retry interceptor: a retry timer that outlives connection.close() crashes the process.
  const connection = Connection.lazy({ address: `127.0.0.1:${await freePort()}`, interceptors: [] });
  const temporal = new Client({ connection });
  const logger = pino({ level: 'silent' });
  const startApp = async (appEnv: NodeJS.ProcessEnv) => {
    const server = await listen(createApp({ prisma, temporal, config: loadConfig(appEnv), logger }));
    servers.push(server);
    return server;
  };
  const main = await startApp(env);
  return {
    url: main.url,
    prisma,
    temporal,
    startApp,
    async get(path, key) {
      const res = await fetch(`${main.url}${path}`, { headers: key ? { 'x-api-key': key } : {} });
      const text = await res.text();
      const type = res.headers.get('content-type');
      return { status: res.status, text, type, body: type?.includes('json') ? JSON.parse(text) : undefined };
    },
    async stop() {
      for (const s of servers) await s.close();
      await temporal.connection.close();
      await prisma.$disconnect();
      await database.drop();
    },
  };
}
