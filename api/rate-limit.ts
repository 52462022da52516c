import type { RequestHandler, Response } from 'express';
import { Counter, register } from 'prom-client';
import type { Config } from '../config';
import { serialSchema } from '../domain/heartbeat';
import { RateLimiter, type BucketPolicy } from '../domain/rate-limit';
import { findKey, isPartnerKey, type ApiKey, type Scope } from './auth';
import { ApiError } from './errors';

/**
 * Request rate limits: a token bucket per API key for requests that present a valid key (a
 * partner's key with the partners' own policy), and one per client IP for everything else (the
 * DriveU webhook, health, metrics, OpenAPI, and requests with a missing or wrong key). PIN checks
 * through the API have a bucket per robot as well.
 * Over a limit: 429 RESOURCE_EXHAUSTED with Retry-After. Buckets live in this process's memory:
 * with several API processes, each allows the rate.
 */

export type RateLimitSettings = {
  perKey: BucketPolicy | null;
  perPartnerKey: BucketPolicy | null;
  perClientIp: BucketPolicy | null;
  pinChecksPerRobot: BucketPolicy | null;
};

type LimitConfig = Pick<
  Config,
  | 'API_RATE_LIMIT_PER_SECOND'
  | 'API_RATE_BURST'
  | 'PARTNER_RATE_LIMIT_PER_SECOND'
  | 'PARTNER_RATE_BURST'
  | 'IP_RATE_LIMIT_PER_SECOND'
  | 'IP_RATE_BURST'
  | 'PIN_CHECK_RATE_PER_SECOND'
  | 'PIN_CHECK_BURST'
>;

/** A rate of 0 turns a limit off. */
export function rateLimitSettings(config: LimitConfig): RateLimitSettings {
  const policy = (ratePerSecond: number, burst: number) => (ratePerSecond > 0 ? { ratePerSecond, burst } : null);
  return {
    perKey: policy(config.API_RATE_LIMIT_PER_SECOND, config.API_RATE_BURST),
    perPartnerKey: policy(config.PARTNER_RATE_LIMIT_PER_SECOND, config.PARTNER_RATE_BURST),
    perClientIp: policy(config.IP_RATE_LIMIT_PER_SECOND, config.IP_RATE_BURST),
    pinChecksPerRobot: policy(config.PIN_CHECK_RATE_PER_SECOND, config.PIN_CHECK_BURST),
  };
}

const THROTTLED = 'fleet_http_throttled_total';
type LimitName = 'api_key' | 'partner_key' | 'client_ip' | 'pin_checks';

function throttledCounter(): Counter<'limit'> {
  return (
    (register.getSingleMetric(THROTTLED) as Counter<'limit'> | undefined) ??
    new Counter({ name: THROTTLED, help: 'Requests refused with 429 by the API rate limits', labelNames: ['limit'] })
  );
}

function refuse(res: Response, limit: LimitName, who: string, policy: BucketPolicy, retryAfterMs: number): never {
  const retryAfterSeconds = Math.max(1, Math.ceil(retryAfterMs / 1000));
  throttledCounter().inc({ limit });
  res.set('Retry-After', String(retryAfterSeconds));
  throw new ApiError(
    429,
    'RESOURCE_EXHAUSTED',
    `rate limit exceeded for ${who} (${policy.ratePerSecond} requests per second, bursts of ${policy.burst}): retry after ${retryAfterSeconds} s`,
    { retryAfterSeconds },
  );
}

/** Mounted before every route: per API key (a partner's with the partners' policy), or per client IP without a valid key. */
export function rateLimit(keys: ApiKey[], settings: RateLimitSettings, now: () => number = Date.now): RequestHandler {
  const perKey = settings.perKey && new RateLimiter(settings.perKey);
  const perPartnerKey = settings.perPartnerKey && new RateLimiter(settings.perPartnerKey);
  const perClientIp = settings.perClientIp && new RateLimiter(settings.perClientIp);
  throttledCounter();
  return (req, res, next) => {
    const presented = req.get('x-api-key');
    const key = presented ? findKey(keys, presented) : undefined;
    // Keyed by the key's digest: the limiter never holds a key.
    const [limiter, client, limit, who] = key
      ? isPartnerKey(key)
        ? [perPartnerKey, `key:${key.hash.toString('hex')}`, 'partner_key' as const, 'this API key']
        : [perKey, `key:${key.hash.toString('hex')}`, 'api_key' as const, 'this API key']
      : [perClientIp, `ip:${req.ip ?? req.socket.remoteAddress ?? 'unknown'}`, 'client_ip' as const, 'this client address'];
    if (!limiter) return next();
    const take = limiter.take(client, now());
    if (take.allowed) return next();
    refuse(res, limit, who, limiter.policy, take.retryAfterMs);
  };
}

/**
 * Mounted on `/v1/devices/:serial/unlock-pin/validate` after authentication. The lockout judges
 * PIN checks of one robot one at a time (a database lock), so a flood of them would queue for the
 * database and starve every other request; this bucket turns the flood away before it gets there.
 * Only callers allowed to check PINs (scope operate) use up a robot's budget.
 */
export function limitPinChecks(policy: BucketPolicy | null, now: () => number = Date.now): RequestHandler {
  const limiter = policy && new RateLimiter(policy);
  return (req, res, next) => {
    const serial = String(req.params.serial ?? '');
    const scopes = res.locals.scopes as ReadonlySet<Scope> | undefined;
    if (!limiter || req.method !== 'POST' || !scopes?.has('operate') || !serialSchema.safeParse(serial).success) return next();
    const take = limiter.take(`serial:${serial}`, now());
    if (take.allowed) return next();
    refuse(res, 'pin_checks', `PIN checks on ${serial}`, limiter.policy, take.retryAfterMs);
  };
}

/** Every operation may answer 429; added to the generated document rather than to each route's registration. */
export function withRateLimitResponses<T extends object>(document: T): T {
  const paths = (document as { paths?: Record<string, Record<string, { responses?: Record<string, unknown> }>> }).paths ?? {};
  for (const operations of Object.values(paths)) {
    for (const operation of Object.values(operations)) {
      if (!operation.responses || operation.responses['429']) continue;
      operation.responses['429'] = {
        description: 'Rate limit exceeded (per API key, or per client IP without one); Retry-After gives the seconds to wait',
        headers: { 'Retry-After': { schema: { type: 'integer' }, description: 'seconds' } },
        content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
      };
    }
  }
  return document;
}
