import { ApplicationFailure } from '@temporalio/common';

/**
 * How a partner's HTTP answer becomes a Temporal outcome: 2xx done; 429 retried after its
 * Retry-After; any other 4xx not retried (the workflow records it as an event); 5xx and network
 * errors retried with the activity's backoff.
 */

export const partnerFailureTypes = {
  throttled: 'PartnerThrottled',
  rejected: 'PartnerRejected',
  unavailable: 'PartnerUnavailable',
  notConfigured: 'PartnerNotConfigured',
} as const;

const REQUEST_TIMEOUT_MS = 10_000;
const DEFAULT_RETRY_AFTER_MS = 1_000;
const MAX_BODY_IN_ERROR = 500;

/** Retry-After is seconds or an HTTP date. */
export function retryAfterMs(header: string | null, now = Date.now()): number {
  if (header === null || header.trim() === '') return DEFAULT_RETRY_AFTER_MS;
  if (/^\d+(\.\d+)?$/.test(header.trim())) return Math.round(Number(header) * 1000);
  const at = Date.parse(header);
  return Number.isNaN(at) ? DEFAULT_RETRY_AFTER_MS : Math.max(at - now, 0);
}

export async function postJson(url: string, body: unknown, headers: Record<string, string>): Promise<void> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  });
  const text = (await res.text()).slice(0, MAX_BODY_IN_ERROR);
  if (res.ok) return;
  const details = { httpStatus: res.status, body: text };
  if (res.status === 429) {
    const delay = retryAfterMs(res.headers.get('retry-after'));
    throw ApplicationFailure.create({ message: `throttled (429), retry after ${delay} ms`, type: partnerFailureTypes.throttled, details: [details], nextRetryDelay: delay });
  }
  if (res.status >= 400 && res.status < 500) {
    throw ApplicationFailure.nonRetryable(`rejected with ${res.status}: ${text}`, partnerFailureTypes.rejected, details);
  }
  throw ApplicationFailure.retryable(`failed with ${res.status}: ${text}`, partnerFailureTypes.unavailable, details);
}
