import type { Prisma } from '../infra/prisma';
import type { DomainEvent } from '../domain/events';
import type { DriveuState } from '../domain/driveu';
import type { PartnerStatusUpdate } from '../domain/partner-delivery';
import { readRobotLocation, recordDriveuStatus, recordFleetEvents } from '../store/fleet';
import { partnerAdapter, type PartnerRegistry } from './partners';

/** The fleet view's activities: what the workflows record goes to store/fleet.ts, pushes to the partner adapters. */

export type PartnerPushInput = Omit<PartnerStatusUpdate, 'location'> & { serial: string };

/** Pushes the delivery with the robot's latest location; without any location yet there is nothing to push. */
export async function pushPartnerStatus(deps: FleetActivityDeps, input: PartnerPushInput): Promise<{ pushed: boolean }> {
  const adapter = partnerAdapter(deps.partners, input.provider);
  const location = await readRobotLocation(deps.prisma, input.serial);
  if (location === null) return { pushed: false };
  const { serial: _serial, ...update } = input;
  await adapter.pushStatus({ ...update, location });
  return { pushed: true };
}

export type FleetActivityDeps = { prisma: Prisma; partners?: PartnerRegistry };

export function createFleetActivities(deps: FleetActivityDeps) {
  return {
    recordDriveuStatus: (serial: string, driveu: DriveuState) => recordDriveuStatus(deps.prisma, serial, driveu),
    recordFleetEvents: (events: DomainEvent[]) => recordFleetEvents(deps.prisma, events),
    pushPartnerStatus: (input: PartnerPushInput) => pushPartnerStatus(deps, input),
  };
}
