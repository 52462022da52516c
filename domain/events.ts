import { z } from 'zod';

/** Domain events as CONTRACT.md publishes them: `{ id, type, serial, occurredAt, data }`. */

export const eventTypes = [
  'Device.ConnectivityChanged',
  'Device.HealthDegraded',
  'Device.HealthRestored',
  'LidCycle.Started',
  'LidCycle.Completed',
  'LidCycle.Timeout',
  'LidCycle.PinValidated',
  'LidCycle.PinRejected',
  'LidCycle.PinEntryLocked',
  'Rollout.Started',
  'Rollout.StageCompleted',
  'Rollout.Succeeded',
  'Rollout.Failed',
  'Rollout.Cancelled',
  // Rollouts started before the rename keep these to their end (domain/rollout.ts).
  'Deployment.Started',
  'Deployment.StageCompleted',
  'Deployment.Succeeded',
  'Deployment.Failed',
  'Deployment.Cancelled',
  'PartnerDelivery.PushRejected',
  'PartnerDelivery.PushFailed',
  'PartnerDelivery.Started',
  'PartnerDelivery.StatusChanged',
  'PartnerDelivery.Ended',
] as const;

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
