import { z } from 'zod';
import type { ProviderMappingReplica } from './fleet-facts';
import type { DeliverySnapshot, PartnerStatusUpdate } from './partner-delivery';
import { doorDashStatus, doordashDeliveryStatuses, etaToDropoff } from './partner-doordash';

/**
 * Seed 000's GetVirtualRobot for partners: which of our robots a provider's vehicle id is now, and
 * its live status in the shape of the seed's `VehicleStatus` (the one partner schema the seeds
 * give, DoorDash's), camelCase as the REST API answers, with the lid, the battery and connectivity
 * beside it. Built from the replicas and the projection when asked, so it is as fresh as the last
 * fact and the last heartbeat.
 */

export type PartnerRobotState = {
  location: (PartnerStatusUpdate['location'] & { updatedAt: number | null }) | null;
  lidOpen: boolean;
  lidUpdatedAt: number | null;
  batteryPercent: number | null;
  online: boolean;
};

/** What store/fleet.ts readPartnerVehicle reads: the live mapping, its delivery, and the robot (null before its first heartbeat). */
export type PartnerVehicleRead = { mapping: ProviderMappingReplica; snapshot: DeliverySnapshot; robot: PartnerRobotState | null };

const timestamp = z.string().describe('RFC 3339 timestamp');
const latLng = z.object({ lat: z.number(), lng: z.number() });

export const partnerVehicleSchema = z.object({
  name: z.string().describe('partners/{provider}/vehicles/{providerVehicleId}'),
  provider: z.string(),
  providerVehicleId: z.string(),
  serial: z.string().describe('our robot that is this vehicle now'),
  deliveryId: z.string().describe('the delivery the vehicle is mapped for'),
  mappedAt: timestamp.nullable().describe("the mapping's ProviderMapping.Created"),
  vehicleStatus: z.object({
    vehicleId: z.string(),
    vehicleLocation: latLng.nullable().describe('null until the robot has reported a position'),
    elevation: z.number().optional(),
    deliveryStatus: z.enum(doordashDeliveryStatuses),
    dropoffLocation: latLng.optional(),
    deliveryFailure: z.string().nullable(),
    etaToDropoff: z.number().int().describe('seconds, straight line at the robot speed; 0 at or past the drop-off, or when it is unknown'),
    locationUpdatedAt: timestamp.nullable(),
    lidState: z.object({ isOpen: z.boolean(), updatedAt: timestamp.nullable() }),
    batteryPercent: z.number().int().nullable().describe("the robot's lowest battery; null before one is reported"),
    online: z.boolean(),
  }),
});
export type PartnerVehicle = z.infer<typeof partnerVehicleSchema>;

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

export function toPartnerVehicle({ mapping, snapshot, robot }: PartnerVehicleRead): PartnerVehicle {
  const providerVehicleId = mapping.providerVehicleId ?? '';
  const { status, failure } = doorDashStatus(snapshot);
  const location = robot?.location ?? null;
  return {
    name: `partners/${mapping.provider}/vehicles/${providerVehicleId}`,
    provider: mapping.provider,
    providerVehicleId,
    serial: mapping.serial,
    deliveryId: mapping.deliveryId,
    mappedAt: iso(mapping.createdAt),
    vehicleStatus: {
      vehicleId: providerVehicleId,
      vehicleLocation: location && { lat: location.lat, lng: location.lng },
      ...(location?.altitude == null ? {} : { elevation: location.altitude }),
      deliveryStatus: status,
      ...(mapping.dropoff ? { dropoffLocation: { lat: mapping.dropoff.lat, lng: mapping.dropoff.lng } } : {}),
      deliveryFailure: failure,
      etaToDropoff: location ? etaToDropoff(status, location, mapping.dropoff) : 0,
      locationUpdatedAt: iso(location?.updatedAt ?? null),
      lidState: { isOpen: robot?.lidOpen ?? false, updatedAt: iso(robot?.lidUpdatedAt ?? null) },
      batteryPercent: robot?.batteryPercent ?? null,
      online: robot?.online ?? false,
    },
  };
}
