import type { DomainEvent } from '../domain/events';
import type { EventFilter, StoredEvent } from '../store/events';

/** Server-Sent Events framing (WHATWG HTML, "Server-sent events"), pure so it is unit-tested. */

const oneLine = (text: string) => text.replace(/[\r\n]+/g, ' ');

/** One message; every line of `data` gets its own `data:` field, so the client rejoins them with \n. */
export function sseMessage(message: { id?: string; event?: string; data: string }): string {
  let frame = '';
  if (message.id !== undefined) frame += `id: ${oneLine(message.id)}\n`;
  if (message.event !== undefined) frame += `event: ${oneLine(message.event)}\n`;
  for (const line of message.data.split(/\r\n|\r|\n/)) frame += `data: ${line}\n`;
  return `${frame}\n`;
}

/** A comment line: clients ignore it; proxies see traffic. */
export const sseComment = (text: string) => `: ${oneLine(text)}\n\n`;

/** How long a client waits before reconnecting after the stream breaks. */
export const sseRetry = (ms: number) => `retry: ${Math.round(ms)}\n\n`;

/** A domain event as the stream sends it: `id` is its seq, so Last-Event-ID resumes after it. */
export function eventMessage(event: StoredEvent): string {
  const body: DomainEvent = { id: event.id, type: event.type, serial: event.serial, occurredAt: event.occurredAt, data: event.data };
  return sseMessage({ id: String(event.seq), event: event.type, data: JSON.stringify(body) });
}

export const matchesFilter = (filter: EventFilter, event: StoredEvent) =>
  (filter.type === undefined || event.type === filter.type) && (filter.serial === undefined || event.serial === filter.serial);

/**
 * Where a stream starts: after the Last-Event-ID a reconnecting client sends, else after `?after=`,
 * else (undefined) at the newest event. The header wins because EventSource keeps the URL of the
 * first request, `?after=` included, on every reconnect.
 */
export function resumeAfter(lastEventId: string | undefined, after: string | undefined): bigint | undefined {
  const cursor = lastEventId ?? after;
  return cursor === undefined ? undefined : BigInt(cursor);
}
