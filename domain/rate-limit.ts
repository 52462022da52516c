/**
 * Token buckets: a client may send `burst` requests at once, then `ratePerSecond` on average.
 * Pure: the caller passes the time, so the rules are unit-tested without clocks or servers.
 */

export type BucketPolicy = { ratePerSecond: number; burst: number };
export type Bucket = { tokens: number; updatedAt: number };
export type Take = { allowed: true; remaining: number } | { allowed: false; retryAfterMs: number };

/** The bucket at `now`: refilled for the time since it was last used, never above `burst`. */
export function refill(bucket: Bucket | undefined, policy: BucketPolicy, now: number): Bucket {
  if (bucket === undefined) return { tokens: policy.burst, updatedAt: now };
  // A clock that steps back refills nothing rather than draining the bucket.
  const elapsedMs = Math.max(0, now - bucket.updatedAt);
  return { tokens: Math.min(policy.burst, bucket.tokens + (elapsedMs / 1000) * policy.ratePerSecond), updatedAt: Math.max(now, bucket.updatedAt) };
}

export function takeToken(bucket: Bucket | undefined, policy: BucketPolicy, now: number): { take: Take; bucket: Bucket } {
  const current = refill(bucket, policy, now);
  // Refills add up in floating point: a token 1e-9 short of whole is whole.
  if (current.tokens >= 1 - 1e-9) {
    const tokens = Math.max(0, current.tokens - 1);
    return { take: { allowed: true, remaining: Math.floor(tokens) }, bucket: { ...current, tokens } };
  }
  const retryAfterMs = Math.ceil(((1 - current.tokens) / policy.ratePerSecond) * 1000);
  return { take: { allowed: false, retryAfterMs }, bucket: current };
}

/**
 * One bucket per client (an API key's digest, an IP address). A full bucket is the same as none,
 * so idle clients are forgotten as they are met, and past `maxClients` the least recently seen
 * go first: memory stays bounded however many addresses an attacker sends from.
 */
export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();

  constructor(
    readonly policy: BucketPolicy,
    private readonly maxClients = 100_000,
  ) {}

  take(client: string, now: number): Take {
    const { take, bucket } = takeToken(this.buckets.get(client), this.policy, now);
    // Re-inserting keeps the Map in least-recently-seen order.
    this.buckets.delete(client);
    this.buckets.set(client, bucket);
    this.forgetIdle(now);
    return take;
  }

  get size(): number {
    return this.buckets.size;
  }

  private forgetIdle(now: number): void {
    for (const [client, bucket] of this.buckets) {
      const overCapacity = this.buckets.size > this.maxClients;
      if (!overCapacity && refill(bucket, this.policy, now).tokens < this.policy.burst) return;
      this.buckets.delete(client);
    }
  }
}
