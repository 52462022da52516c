import type { TemporalClient } from '../clients/connection';
import { signalPartnerDelivery } from '../clients/partner-deliveries';
import { signalFleetFacts, type RobotStart } from '../clients/robots';
import { partnerProviders } from '../activities/partners';
import type { OperationsEvent, OperationsEventOutcome } from '../domain/operations-events';
import type { Prisma } from '../infra/prisma';
import { applyOperationsEvents } from '../store/fleet';

/**
 * Business facts from Operations and Deliveries, however they come (POST /v1/operations-events,
 * the RabbitMQ consumer in ingest/operations-facts-consumer.ts): stored and applied to the fleet
 * view in one transaction (a repeated id changes nothing), then the robot and partner delivery
 * workflows are signalled. Throws store/fleet.ts OperationsEventConflict for an id received
 * before with other content, and FactsNotSignalled when the facts are stored but a signal failed:
 * sending the same facts again signals again.
 */

export type OperationsFactsDeps = {
  prisma: Prisma;
  temporal: TemporalClient;
  /** How a robot workflow starts when Operations knows the robot before its first heartbeat. */
  robotStart: RobotStart;
  /** PARTNER_PUSH_INTERVAL_SECONDS, in ms. */
  pushIntervalMs: number;
  taskQueue?: string;
};

export class FactsNotSignalled extends Error {
  constructor(cause: unknown) {
    super(`facts stored, but the workflows could not be signalled: ${(cause as Error)?.message ?? String(cause)}`, { cause });
  }
}

export async function applyOperationsFacts(deps: OperationsFactsDeps, events: OperationsEvent[]): Promise<{ id: string; outcome: OperationsEventOutcome }[]> {
  const applied = await applyOperationsEvents(deps.prisma, events);
  try {
    await Promise.all(applied.robots.map((r) => signalFleetFacts(deps.temporal, deps.robotStart, r.serial, r.update)));
    const pushed = applied.deliveries.filter((d) => partnerProviders.includes(d.mapping.provider));
    await Promise.all(pushed.map((d) => signalPartnerDelivery(deps.temporal, d.mapping, d.snapshot, { pushIntervalMs: deps.pushIntervalMs, taskQueue: deps.taskQueue })));
  } catch (error) {
    throw new FactsNotSignalled(error);
  }
  return applied.results;
}
