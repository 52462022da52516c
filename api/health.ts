import { Router } from 'express';
import type { Logger } from 'pino';
import type { Prisma as PrismaClient } from '../infra/prisma';
import { temporalAnswers, type TemporalClient } from '../clients/connection';
import { pingDatabase } from '../store/health';
import { unavailable } from './errors';

export const READY_TIMEOUT_MS = 2000;

type Outcome = 'ok' | 'failed' | 'timed out';

/** /readyz answers without authentication, so the reason goes to the log, not the response. */
async function probe(name: string, check: () => Promise<unknown>, logger: Logger): Promise<Outcome> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<Outcome>((resolve) => {
    timer = setTimeout(() => resolve('timed out'), READY_TIMEOUT_MS);
  });
  const outcome = check().then(
    (): Outcome => 'ok',
    (err: unknown): Outcome => {
      logger.warn({ err, dependency: name }, 'readiness check failed');
      return 'failed';
    },
  );
  try {
    return await Promise.race([outcome, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export function healthRoutes(deps: { prisma: PrismaClient; temporal: TemporalClient; logger: Logger }): Router {
  const { prisma, temporal, logger } = deps;
  const router = Router();

  router.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });

  router.get('/readyz', async (_req, res) => {
    const deadline = Date.now() + READY_TIMEOUT_MS;
    const [postgres, temporalOutcome] = await Promise.all([
      probe('postgres', () => pingDatabase(prisma), logger),
      probe('temporal', () => temporalAnswers(temporal, deadline), logger),
    ]);
    const checks = { postgres, temporal: temporalOutcome };
    const failed = Object.entries(checks).filter(([, outcome]) => outcome !== 'ok');
    if (failed.length > 0) throw unavailable(`not ready: ${failed.map(([name]) => name).join(', ')}`, { checks });
    res.json({ status: 'ok', checks });
  });

  return router;
}
