import { createServer, type RequestListener, type Server } from 'node:http';

/**
 * The API's HTTP server. Its request headers may take 96 KiB rather than Node's 16 KiB: the URL of
 * GET /v1/devices:batchGet holds up to 1,000 serials of up to 64 characters.
 */
export const MAX_HEADER_BYTES = 96 * 1024;

export function listenHttp(app: RequestListener, port: number, host?: string): Promise<Server> {
  const server = createServer({ maxHeaderSize: MAX_HEADER_BYTES }, app);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}
