import express from 'express';
import type { Client } from '@temporalio/client';
import pino, { type Logger } from 'pino';
import type { Config } from '../config';
import type { Prisma as PrismaClient } from '../infra/prisma';
import { apiKeysFromConfig, authenticate } from './auth';
import { deviceRoutes } from './devices';
import { errorHandler, routeNotFound } from './errors';
import { eventRoutes } from './events';
import { healthRoutes } from './health';
import { httpMetrics, metricsHandler, rejectedMessagesGauge } from './metrics';
import { buildOpenApiDocument } from './openapi';

export type AppDeps = { prisma: PrismaClient; temporal: Client; config: Config; logger?: Logger };

/** The REST API of CONTRACT.md. Without API_KEYS, the key is `developmentKey()` from ./auth. */
export function createApp(deps: AppDeps): express.Express {
  const logger = deps.logger ?? pino({ level: deps.config.LOG_LEVEL });
  const routeDeps = { prisma: deps.prisma, temporal: deps.temporal, logger };
  const apiKeys = apiKeysFromConfig(deps.config);
  const openApiDocument = buildOpenApiDocument();
  rejectedMessagesGauge(deps.prisma, logger);

  const app = express();
  app.disable('x-powered-by');
  app.use(httpMetrics());
  app.use(express.json({ limit: '100kb' }));

  app.use(healthRoutes(routeDeps));
  app.get('/metrics', metricsHandler);
  app.get('/openapi.json', (_req, res) => {
    res.json(openApiDocument);
  });

  app.use(authenticate(apiKeys));
  app.use(deviceRoutes(routeDeps));
  app.use(eventRoutes(routeDeps));

  app.use(routeNotFound);
  app.use(errorHandler(logger));
  return app;
}
