import { createHmac, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import type { DeliveryStatus, TripStage } from './operations-events';
import { etaSeconds, partnerProgress, type DeliverySnapshot, type LatLng, type PartnerStatusUpdate } from './partner-delivery';

/**
 * DoorDash's side of a partner delivery: the seed's `VehicleStatus` (snake_case, as DoorDash takes
 * it at POST /v3/vehicles/status), where the delivery stands mapped to DoorDash's delivery status, and
 * DoorDash's JWT (HS256, header `dd-ver: DD-JWT-V1`). Seed 000 names one status,
 * HEADING_TO_DROPOFF_LOCATION; the others follow its pattern (docs/fleet-view-and-partners.md, "Partner status push").
 */

export const doordashDeliveryStatuses = [
  'VEHICLE_ASSIGNED',
  'HEADING_TO_PICKUP_LOCATION',
  'ARRIVED_AT_PICKUP_LOCATION',
  'PICKED_UP',
  'HEADING_TO_DROPOFF_LOCATION',
  'ARRIVED_AT_DROPOFF_LOCATION',
  'DELIVERED',
  'DELIVERY_CANCELLED',
  'DELIVERY_FAILED',
] as const;
export type DoorDashDeliveryStatus = (typeof doordashDeliveryStatuses)[number];

const byStatus: Record<DeliveryStatus, DoorDashDeliveryStatus> = {
  PENDING: 'VEHICLE_ASSIGNED',
  ASSIGNED: 'VEHICLE_ASSIGNED',
  EN_ROUTE_TO_PICKUP: 'HEADING_TO_PICKUP_LOCATION',
  AT_PICKUP: 'ARRIVED_AT_PICKUP_LOCATION',
  PICKED_UP: 'PICKED_UP',
  EN_ROUTE_TO_DROPOFF: 'HEADING_TO_DROPOFF_LOCATION',
  AT_DROPOFF: 'ARRIVED_AT_DROPOFF_LOCATION',
  DELIVERED: 'DELIVERED',
  CANCELLED: 'DELIVERY_CANCELLED',
  FAILED: 'DELIVERY_FAILED',
};

/** Where the delivery stands (domain/partner-delivery.ts partnerProgress), in DoorDash's names. */
export function doorDashStatus(snapshot: DeliverySnapshot): { status: DoorDashDeliveryStatus; failure: string | null } {
  const { status, failure } = partnerProgress(snapshot);
  return { status: byStatus[status], failure };
}

/** A trip's outcome decides the end: delivered, cancelled, or failed with the outcome as the reason. */
export function toDoorDashStatus(stage: TripStage | null, outcome: string | null): { status: DoorDashDeliveryStatus; failure: string | null } {
  return doorDashStatus({ stage, stageAt: null, outcome, ended: false });
}

const location = z.object({ lat: z.number().min(-90).max(90), lng: z.number().min(-180).max(180) }).strict();

export const vehicleStatusSchema = z
  .object({
    vehicle_location: location,
    elevation: z.number().optional(),
    vehicle_id: z.string().min(1),
    delivery_status: z.enum(doordashDeliveryStatuses),
    dropoff_location: location.optional(),
    delivery_failure: z.string().min(1).nullable(),
    eta_to_dropoff: z.number().int().min(0),
    eta_to_pickup_location: z.number().int().min(0).optional(),
  })
  .strict();
export type VehicleStatus = z.infer<typeof vehicleStatusSchema>;

const headingForDropoff = new Set<DoorDashDeliveryStatus>([
  'VEHICLE_ASSIGNED',
  'HEADING_TO_PICKUP_LOCATION',
  'ARRIVED_AT_PICKUP_LOCATION',
  'PICKED_UP',
  'HEADING_TO_DROPOFF_LOCATION',
]);

/** Straight line at the robot's speed, in seconds; 0 once at the drop-off, or when the drop-off is unknown. */
export function etaToDropoff(status: DoorDashDeliveryStatus, location: PartnerStatusUpdate['location'], dropoff: LatLng | null): number {
  return headingForDropoff.has(status) && dropoff ? etaSeconds(location, dropoff, location.speedMph) : 0;
}

export function buildVehicleStatus(update: PartnerStatusUpdate): VehicleStatus {
  const { status, failure } = doorDashStatus(update.snapshot);
  const { lat, lng, altitude } = update.location;
  return {
    vehicle_location: { lat, lng },
    ...(altitude === null ? {} : { elevation: altitude }),
    vehicle_id: update.providerVehicleId,
    delivery_status: status,
    ...(update.dropoff ? { dropoff_location: { lat: update.dropoff.lat, lng: update.dropoff.lng } } : {}),
    delivery_failure: failure,
    eta_to_dropoff: etaToDropoff(status, update.location, update.dropoff),
  };
}

// ---- DoorDash JWT

export type DoorDashCredentials = { developerId: string; keyId: string; signingSecret: string };

const JWT_LIFETIME_SECONDS = 300;
const CLOCK_SKEW_SECONDS = 60;
const b64url = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
const hmac = (input: string, secret: string) => createHmac('sha256', Buffer.from(secret, 'base64url')).update(input).digest();

export function signDoorDashJwt(creds: DoorDashCredentials, nowSeconds: number): string {
  const header = { alg: 'HS256', typ: 'JWT', 'dd-ver': 'DD-JWT-V1' };
  const claims = { aud: 'doordash', iss: creds.developerId, kid: creds.keyId, iat: nowSeconds, exp: nowSeconds + JWT_LIFETIME_SECONDS };
  const unsigned = `${b64url(header)}.${b64url(claims)}`;
  return `${unsigned}.${hmac(unsigned, creds.signingSecret).toString('base64url')}`;
}

const jwtHeaderSchema = z.object({ alg: z.literal('HS256'), 'dd-ver': z.literal('DD-JWT-V1') });
const jwtClaimsSchema = z.object({ aud: z.literal('doordash'), iss: z.string(), kid: z.string(), iat: z.number(), exp: z.number() });

/** What DoorDash checks; returns why a token is refused, or null when it is good. */
export function verifyDoorDashJwt(token: string, creds: DoorDashCredentials, nowSeconds: number): string | null {
  const parts = token.split('.');
  if (parts.length !== 3) return 'not a JWT';
  const [header, claims, signature] = parts;
  const expected = hmac(`${header}.${claims}`, creds.signingSecret);
  const given = Buffer.from(signature, 'base64url');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return 'bad signature';
  const h = jwtHeaderSchema.safeParse(decode(header));
  if (!h.success) return 'header must have alg HS256 and dd-ver DD-JWT-V1';
  const c = jwtClaimsSchema.safeParse(decode(claims));
  if (!c.success) return `claims: ${c.error.issues[0].path.join('.')}: ${c.error.issues[0].message}`;
  if (c.data.iss !== creds.developerId) return 'iss is not the developer id';
  if (c.data.kid !== creds.keyId) return 'kid is not the key id';
  if (c.data.exp <= nowSeconds) return 'expired';
  if (c.data.iat > nowSeconds + CLOCK_SKEW_SECONDS) return 'issued in the future';
  return null;
}

function decode(part: string): unknown {
  try {
    return JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
}
