import { z } from 'zod';

/** Domain events as CONTRACT.md publishes them: `{ id, type, serial, occurredAt, data }`; docs/events.md lists the types. */

export const domainEventSchema = z.object({
  id: z.string().describe('stable across retries'),
  type: z.string(),
  serial: z.string().nullable(),
  occurredAt: z.string().describe('RFC 3339 timestamp'),
  data: z.record(z.string(), z.unknown()),
});
export type DomainEvent = z.infer<typeof domainEventSchema>;

/** An event decided by pure code; the workflow gives it an id that replays and retries keep. */
export type EventDraft = Omit<DomainEvent, 'id'>;
