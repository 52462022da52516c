import { RateLimiter, takeToken, type Bucket, type BucketPolicy } from '../../domain/rate-limit';

const policy: BucketPolicy = { ratePerSecond: 2, burst: 3 };

/** Takes `n` tokens at `now`, returning which were allowed. */
function takeMany(limiter: RateLimiter, client: string, n: number, now: number): boolean[] {
  return Array.from({ length: n }, () => limiter.take(client, now).allowed);
}

describe('token bucket', () => {
  it('allows a burst, then refuses with the wait until the next token', () => {
    let bucket: Bucket | undefined;
    const outcomes = [];
    for (let i = 0; i < 4; i++) {
      const result = takeToken(bucket, policy, 1_000);
      bucket = result.bucket;
      outcomes.push(result.take);
    }
    expect(outcomes.slice(0, 3)).toEqual([
      { allowed: true, remaining: 2 },
      { allowed: true, remaining: 1 },
      { allowed: true, remaining: 0 },
    ]);
    // 2 tokens a second: the next one is 500 ms away.
    expect(outcomes[3]).toEqual({ allowed: false, retryAfterMs: 500 });
  });

  it('refills at the rate, never above the burst', () => {
    const limiter = new RateLimiter(policy);
    expect(takeMany(limiter, 'a', 3, 0)).toEqual([true, true, true]);
    expect(limiter.take('a', 499).allowed).toBe(false);
    expect(limiter.take('a', 500).allowed).toBe(true);
    expect(limiter.take('a', 500).allowed).toBe(false);
    // An hour idle still allows only one burst.
    expect(takeMany(limiter, 'a', 4, 3_600_000)).toEqual([true, true, true, false]);
  });

  it('keeps one bucket per client', () => {
    const limiter = new RateLimiter(policy);
    expect(takeMany(limiter, 'a', 4, 0)).toEqual([true, true, true, false]);
    expect(takeMany(limiter, 'b', 3, 0)).toEqual([true, true, true]);
  });

  it('gains nothing from a clock that steps back', () => {
    const limiter = new RateLimiter(policy);
    takeMany(limiter, 'a', 3, 10_000);
    expect(limiter.take('a', 0).allowed).toBe(false);
    expect(limiter.take('a', 10_499).allowed).toBe(false);
    expect(limiter.take('a', 10_500).allowed).toBe(true);
  });

  it('a refused request does not consume what refilled meanwhile', () => {
    const limiter = new RateLimiter({ ratePerSecond: 1, burst: 1 });
    expect(limiter.take('a', 0).allowed).toBe(true);
    for (let t = 100; t < 1_000; t += 100) expect(limiter.take('a', t).allowed).toBe(false);
    expect(limiter.take('a', 1_000).allowed).toBe(true);
  });

  it('forgets clients whose buckets have refilled, so idle clients cost no memory', () => {
    const limiter = new RateLimiter(policy);
    for (let i = 0; i < 1_000; i++) limiter.take(`client-${i}`, 0);
    expect(limiter.size).toBe(1_000);
    // 0.5 s later every bucket has refilled; each new request sweeps the refilled ones off the front.
    limiter.take('late', 60_000);
    expect(limiter.size).toBe(1);
  });

  it('stays within its client cap however many addresses send, dropping the least recently seen', () => {
    const limiter = new RateLimiter({ ratePerSecond: 0.001, burst: 1 }, 100);
    for (let i = 0; i < 10_000; i++) limiter.take(`ip-${i}`, i);
    expect(limiter.size).toBe(100);
    // The most recent clients are still remembered as exhausted.
    expect(limiter.take('ip-9999', 10_000).allowed).toBe(false);
  });
});
