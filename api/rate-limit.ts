import type { RequestHandler } from 'express';
import { Counter, register } from 'prom-client';
import type { Config } from '../config';
import { RateLimiter, type BucketPolicy } from '../domain/rate-limit';
import { findKey, type ApiKey } from './auth';
import { ApiError } from './errors';

/**
 * Request rate limits: a token bucket per API key for requests that present a valid key, and one
 * per client IP for everything else (the DriveU webhook, health, metrics, OpenAPI, and requests
 * with a missing or wrong key). Over the limit: 429 RESOURCE_EXHAUSTED with Retry-After.
 * Buckets live in this process's memory: with several API processes each allows the rate.
 */

export type RateLimitSettings = { perKey: BucketPolicy | null; perClientIp: BucketPolicy | null };

/** A rate of 0 turns a limit off. */
export function rateLimitSettings(config: Pick<Config, 'API_RATE_LIMIT_PER_SECOND' | 'API_RATE_BURST' | 'IP_RATE_LIMIT_PER_SECOND' | 'IP_RATE_BURST'>): RateLimitSettings {
  const policy = (ratePerSecond: number, burst: number) => (ratePerSecond > 0 ? { ratePerSecond, burst } : null);
  return {
    perKey: policy(config.API_RATE_LIMIT_PER_SECOND, config.API_RATE_BURST),
    perClientIp: policy(config.IP_RATE_LIMIT_PER_SECOND, config.IP_RATE_BURST),
  };
}

const THROTTLED = 'fleet_http_throttled_total';

function throttledCounter(): Counter<'limit'> {
  return (
    (register.getSingleMetric(THROTTLED) as Counter<'limit'> | undefined) ??
    new Counter({ name: THROTTLED, help: 'Requests refused with 429 by the API rate limits', labelNames: ['limit'] })
  );
}

export function rateLimit(keys: ApiKey[], settings: RateLimitSettings, now: () => number = Date.now): RequestHandler {
  const perKey = settings.perKey && new RateLimiter(settings.perKey);
  const perClientIp = settings.perClientIp && new RateLimiter(settings.perClientIp);
  const throttled = throttledCounter();
  return (req, res, next) => {
    const presented = req.get('x-api-key');
    const key = presented ? findKey(keys, presented) : undefined;
    // Keyed by the key's digest: the limiter never holds a key.
    const [limiter, client, who] = key
      ? [perKey, `key:${key.hash.toString('hex')}`, 'this API key']
      : [perClientIp, `ip:${req.ip ?? req.socket.remoteAddress ?? 'unknown'}`, 'this client address'];
    if (!limiter) return next();
    const take = limiter.take(client, now());
    if (take.allowed) return next();
    const retryAfterSeconds = Math.max(1, Math.ceil(take.retryAfterMs / 1000));
    throttled.inc({ limit: key ? 'api_key' : 'client_ip' });
    res.set('Retry-After', String(retryAfterSeconds));
    const { ratePerSecond, burst } = limiter.policy;
    throw new ApiError(429, 'RESOURCE_EXHAUSTED', `rate limit exceeded for ${who} (${ratePerSecond} requests per second, bursts of ${burst}): retry after ${retryAfterSeconds} s`, {
      retryAfterSeconds,
    });
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
