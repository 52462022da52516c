import { createServer, type Socket } from 'node:net';
import { createPrisma } from '../infra/prisma';

/**
 * A PostgreSQL being stopped ends each backend with FATAL 57P01; a connection that was just opening
 * gets it in the same read as its ReadyForQuery. Found by the soak (npm run soak): a workflow worker
 * died of it, an unhandled 'error' event on a pg Client, when PostgreSQL was stopped.
 */

/** Answers every connection with a handshake and, in the same write, the FATAL of a shutdown. */
async function shuttingDownPostgres(): Promise<{ url: string; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.once('data', () => {
      const authenticationOk = Buffer.from([0x52, 0, 0, 0, 8, 0, 0, 0, 0]);
      const readyForQuery = Buffer.from([0x5a, 0, 0, 0, 5, 0x49]);
      const fields = Buffer.from('SFATAL\0VFATAL\0C57P01\0Mterminating connection due to administrator command\0\0');
      const header = Buffer.alloc(5);
      header.write('E');
      header.writeInt32BE(fields.length + 4, 1);
      socket.end(Buffer.concat([authenticationOk, readyForQuery, header, fields]));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `postgresql://fleet:fleet@127.0.0.1:${port}/fleet`,
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

test('a connection that PostgreSQL ends as it opens fails its transaction, not the process', async () => {
  const postgres = await shuttingDownPostgres();
  const prisma = createPrisma(postgres.url, 1);
  try {
    for (let i = 0; i < 3; i++) await expect(prisma.$transaction(async (tx) => tx.$queryRaw`SELECT 1`)).rejects.toThrow();
    await expect(prisma.$queryRaw`SELECT 1`).rejects.toThrow();
  } finally {
    await prisma.$disconnect();
    await postgres.close();
  }
});
