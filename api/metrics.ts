import type { RequestHandler } from 'express';
import type { Logger } from 'pino';
import { collectDefaultMetrics, Counter, Gauge, Histogram, register } from 'prom-client';
import type { Prisma as PrismaClient } from '../infra/prisma';
import { countRejectedMessages } from '../store/rejected-messages';

/**
 * Prometheus metrics on prom-client's default registry. Metrics are registered once per process,
 * whoever registers first, because createApp may run more than once (tests, several servers).
 */

function once<T>(name: string, create: () => T): T {
  return (register.getSingleMetric(name) as T | undefined) ?? create();
}

function ensureProcessMetrics(): void {
  if (!register.getSingleMetric('process_cpu_user_seconds_total')) collectDefaultMetrics();
}

const labelNames = ['method', 'route', 'status'] as const;

export function httpMetrics(): RequestHandler {
  ensureProcessMetrics();
  const requests = once(
    'fleet_http_requests_total',
    () => new Counter({ name: 'fleet_http_requests_total', help: 'HTTP requests by route and status', labelNames }),
  );
  const duration = once(
    'fleet_http_request_duration_seconds',
    () => new Histogram({ name: 'fleet_http_request_duration_seconds', help: 'HTTP request duration by route and status', labelNames }),
  );
  return (req, res, next) => {
    const end = duration.startTimer();
    res.on('finish', () => {
      // Unmatched paths share one label, so scanners cannot grow the series without bound.
      const route = req.route ? `${req.baseUrl}${String(req.route.path)}` : 'unmatched';
      const labels = { method: req.method, route, status: String(res.statusCode) };
      requests.inc(labels);
      end(labels);
    });
    next();
  };
}

const REJECTED_GAUGE = 'fleet_rejected_messages_stored';

/** Re-created per app so the count comes from the newest app's database. */
export function rejectedMessagesGauge(prisma: PrismaClient, logger: Logger): void {
  register.removeSingleMetric(REJECTED_GAUGE);
  new Gauge({
    name: REJECTED_GAUGE,
    help: 'Rejected robot messages kept in rejected_messages',
    async collect() {
      try {
        this.set(await countRejectedMessages(prisma));
      } catch (err) {
        logger.warn({ err }, 'cannot count rejected messages');
      }
    },
  });
}

export const metricsHandler: RequestHandler = async (_req, res) => {
  res.set('Content-Type', register.contentType).send(await register.metrics());
};
