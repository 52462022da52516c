import express from 'express';
import type { GreengrassV2Client } from '@aws-sdk/client-greengrassv2';
import pino, { type Logger } from 'pino';
import type { Config } from '../config';
import type { Prisma as PrismaClient } from '../infra/prisma';
import type { TemporalClient } from '../clients/connection';
import { apiKeysFromConfig, authenticate } from './auth';
import { batchGetDeviceRoutes } from './batch-get-devices';
import { deploymentRoutes } from './deployments';
import type { DeviceUpdateStream } from './device-update-stream';
import { deviceUpdateRoutes } from './device-updates';
import { deviceRoutes } from './devices';
import { driveuUnitRoutes, driveuWebhookRoutes } from './driveu';
import { fleetDeviceRoutes } from './fleet-devices';
import { operationsEventRoutes } from './operations-events';
import { partnerRoutes } from './partners';
import { commandRoutes } from './commands';
import { lidRoutes } from './lid';
import { errorHandler, routeNotFound } from './errors';
import { eventRoutes } from './events';
import type { EventStream } from './event-stream';
import { healthRoutes } from './health';
import { methodNotAllowed } from './method-not-allowed';
import { rejectedMessageRoutes } from './rejected-messages';
import { httpMetrics, metricsHandler, rejectedMessagesGauge } from './metrics';
import { buildOpenApiDocument } from './openapi';
import { limitPinChecks, rateLimit, rateLimitSettings, withRateLimitResponses } from './rate-limit';
import { softwareRoutes } from './software';

export type AppDeps = {
  /** Serves GET /v1/events/stream (api/event-stream.ts); without it that route answers 503. */
  eventStream?: EventStream;
  /** Serves GET /v1/device-updates/stream (api/device-update-stream.ts); without it that route answers 503. */
  deviceUpdates?: DeviceUpdateStream;
  prisma: PrismaClient;
  temporal: TemporalClient;
  config: Config;
  logger?: Logger;
  /** Where workflows the API starts run (tests: the fleet's own queue). */
  taskQueue?: string;
  /** For reads straight from Greengrass (`?fresh=true`). */
  greengrass?: GreengrassV2Client;
};

/** The REST API of CONTRACT.md. Without API_KEYS, the key is `developmentKey()` from ./auth. */
export function createApp(deps: AppDeps): express.Express {
  const logger = deps.logger ?? pino({ level: deps.config.LOG_LEVEL });
  const routeDeps = { prisma: deps.prisma, temporal: deps.temporal, logger };
  const apiKeys = apiKeysFromConfig(deps.config);
  const limits = rateLimitSettings(deps.config);
  const openApiDocument = withRateLimitResponses(buildOpenApiDocument());
  rejectedMessagesGauge(deps.prisma, logger);

  const app = express();
  app.disable('x-powered-by');
  if (deps.config.TRUST_PROXY_HOPS > 0) app.set('trust proxy', deps.config.TRUST_PROXY_HOPS);
  app.use(httpMetrics());
  // Before every route, the webhook included: per API key, or per client IP without a valid key.
  app.use(rateLimit(apiKeys, limits));
  app.use(methodNotAllowed);
  // Signed with an HMAC of its raw body, so it reads the body itself, before express.json.
  app.use(driveuWebhookRoutes({ ...routeDeps, config: deps.config, taskQueue: deps.taskQueue }));
  app.use(express.json({ limit: '100kb' }));

  app.use(healthRoutes(routeDeps));
  app.get('/metrics', metricsHandler);
  app.get('/openapi.json', (_req, res) => {
    res.json(openApiDocument);
  });

  app.use(authenticate(apiKeys));
  app.use('/v1/devices/:serial/unlock-pin/validate', limitPinChecks(limits.pinChecksPerRobot));
  app.use(batchGetDeviceRoutes(routeDeps));
  app.use(deviceRoutes(routeDeps));
  app.use(deviceUpdateRoutes({ deviceUpdates: deps.deviceUpdates }));
  app.use(eventRoutes({ ...routeDeps, eventStream: deps.eventStream }));
  app.use(rejectedMessageRoutes(routeDeps));
  app.use(lidRoutes({ ...routeDeps, config: deps.config, taskQueue: deps.taskQueue }));
  app.use(commandRoutes({ ...routeDeps, config: deps.config, taskQueue: deps.taskQueue }));
  app.use(deploymentRoutes({ ...routeDeps, taskQueue: deps.taskQueue }));
  app.use(softwareRoutes({ ...routeDeps, greengrass: deps.greengrass }));
  app.use(fleetDeviceRoutes({ ...routeDeps, config: deps.config, taskQueue: deps.taskQueue }));
  app.use(operationsEventRoutes({ ...routeDeps, config: deps.config, taskQueue: deps.taskQueue }));
  app.use(driveuUnitRoutes({ ...routeDeps, config: deps.config, taskQueue: deps.taskQueue }));
  app.use(partnerRoutes(routeDeps));

  app.use(routeNotFound);
  app.use(errorHandler(logger));
  return app;
}
