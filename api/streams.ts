import type { Logger } from 'pino';
import { PgListener } from '../infra/pg-listener';
import type { Prisma } from '../infra/prisma';
import { createDeviceUpdateStream, type DeviceUpdateStream } from './device-update-stream';
import { createEventStream, type EventStream } from './event-stream';

/**
 * An API process's Server-Sent Events streams (GET /v1/events/stream, GET
 * /v1/device-updates/stream) on its one listening PostgreSQL connection.
 */
export type ApiStreams = { eventStream: EventStream; deviceUpdates: DeviceUpdateStream; close(): Promise<void> };

export function createApiStreams(deps: { prisma: Prisma; databaseUrl: string; logger: Logger; heartbeatMs: number }): ApiStreams {
  const listener = new PgListener({ databaseUrl: deps.databaseUrl, logger: deps.logger, applicationName: 'fleet-api-listener' });
  const feedDeps = { prisma: deps.prisma, listener, logger: deps.logger, heartbeatMs: deps.heartbeatMs };
  const eventStream = createEventStream(feedDeps);
  const deviceUpdates = createDeviceUpdateStream(feedDeps);
  return {
    eventStream,
    deviceUpdates,
    // An arrow function, so `stops.push(['streams', streams.close])` works unbound.
    close: async () => {
      await eventStream.close();
      await deviceUpdates.close();
      await listener.close();
    },
  };
}
