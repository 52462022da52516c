import type { DeliveryStatus, TripStage } from './operations-events';

/**
 * A partner delivery as the partner-delivery workflow follows it, provider-agnostic: the trip's
 * stage, Deliveries' status of the delivery, the trip's outcome and whether the provider mapping
 * has ended. The API sends whole snapshots read from the replicas, so a repeated or late snapshot
 * merges without moving anything back.
 */

export type DeliverySnapshot = {
  stage: TripStage | null;
  /** When the stage was reached (epoch ms). */
  stageAt: number | null;
  outcome: string | null;
  ended: boolean;
  /** From Delivery.StatusChanged; absent in snapshots sent before deliveries had a status. */
  deliveryStatus?: DeliveryStatus | null;
  deliveryStatusAt?: number | null;
};

export const emptySnapshot: DeliverySnapshot = { stage: null, stageAt: null, outcome: null, ended: false };

const isNewer = (at: number | null | undefined, than: number | null | undefined) => than == null || (at ?? 0) > than;

/** The newer stage and delivery status win; an outcome and the end, once known, stay. */
export function mergeSnapshot(current: DeliverySnapshot, incoming: DeliverySnapshot): DeliverySnapshot {
  const stageNewer = incoming.stage !== null && isNewer(incoming.stageAt, current.stageAt);
  const statusNewer = incoming.deliveryStatus != null && isNewer(incoming.deliveryStatusAt, current.deliveryStatusAt);
  const status = statusNewer ? incoming : current;
  return {
    stage: stageNewer ? incoming.stage : current.stage,
    stageAt: stageNewer ? incoming.stageAt : current.stageAt,
    outcome: current.outcome ?? incoming.outcome,
    ended: current.ended || incoming.ended,
    // Only once a status is known, so snapshots of runs started before keep their shape.
    ...(status.deliveryStatus != null ? { deliveryStatus: status.deliveryStatus, deliveryStatusAt: status.deliveryStatusAt ?? null } : {}),
  };
}

/** Two snapshots a partner would be told apart: a change here is pushed at once. */
export const partnerVisible = (s: DeliverySnapshot) => `${s.stage ?? ''}|${s.outcome ?? ''}${s.deliveryStatus ? `|${s.deliveryStatus}` : ''}`;

/** Where a delivery stands for its partner, in our delivery status names, with a reason when it failed or was cancelled. */
export type PartnerProgress = { status: DeliveryStatus; failure: string | null };

const statusOfStage: Record<TripStage, DeliveryStatus> = {
  SCHEDULED: 'ASSIGNED',
  EN_ROUTE_TO_PICKUP: 'EN_ROUTE_TO_PICKUP',
  AT_PICKUP: 'AT_PICKUP',
  LOADING: 'AT_PICKUP',
  LOADED: 'PICKED_UP',
  EN_ROUTE_TO_DROPOFF: 'EN_ROUTE_TO_DROPOFF',
  AT_DROPOFF: 'AT_DROPOFF',
  UNLOADING: 'AT_DROPOFF',
  COMPLETED: 'DELIVERED',
  CANCELLED: 'CANCELLED',
};

const successfulOutcomes = new Set(['DELIVERED', 'COMPLETED', 'SUCCESS', 'SUCCEEDED']);
const isCancelled = (text: string) => /^CANCEL+ED$/.test(text);

/**
 * Deliveries' word on an end (delivered, cancelled, failed) is final, then the trip's outcome;
 * otherwise the newer of Deliveries' status and the trip's stage (Deliveries' on a tie).
 */
export function partnerProgress(s: DeliverySnapshot): PartnerProgress {
  const told = s.deliveryStatus ?? null;
  if (told === 'DELIVERED') return { status: told, failure: null };
  if (told === 'CANCELLED' || told === 'FAILED') return { status: told, failure: told };
  if (s.outcome !== null) {
    const outcome = s.outcome.toUpperCase();
    if (successfulOutcomes.has(outcome)) return { status: 'DELIVERED', failure: null };
    return { status: isCancelled(outcome) ? 'CANCELLED' : 'FAILED', failure: outcome };
  }
  const byStage = s.stage === null ? null : statusOfStage[s.stage];
  if (told !== null && (byStage === null || (s.deliveryStatusAt ?? 0) >= (s.stageAt ?? 0))) return { status: told, failure: null };
  return { status: byStage ?? 'ASSIGNED', failure: null };
}

export type LatLng = { lat: number; lng: number };

/** What a provider adapter is asked to push (activities/partners). */
export type PartnerStatusUpdate = {
  provider: string;
  deliveryId: string;
  providerVehicleId: string;
  snapshot: DeliverySnapshot;
  dropoff: LatLng | null;
  location: LatLng & { altitude: number | null; speedMph: number | null };
  /** Generated in the workflow: the same push retried carries the same id. */
  pushId: string;
};

const EARTH_RADIUS_M = 6_371_000;

export function distanceMeters(a: LatLng, b: LatLng): number {
  const rad = (d: number) => (d * Math.PI) / 180;
  const dLat = rad(b.lat - a.lat);
  const dLng = rad(b.lng - a.lng);
  const h = Math.sin(dLat / 2) ** 2 + Math.cos(rad(a.lat)) * Math.cos(rad(b.lat)) * Math.sin(dLng / 2) ** 2;
  return 2 * EARTH_RADIUS_M * Math.asin(Math.min(1, Math.sqrt(h)));
}

// A sidewalk robot's cruising speed; used when it is standing still or reports no speed.
const CRUISE_MPH = 3;
const MPH_TO_MPS = 0.44704;

/** Straight-line seconds to a point at the robot's speed (at least cruising speed). */
export function etaSeconds(from: LatLng, to: LatLng, speedMph: number | null): number {
  const mps = Math.max(speedMph ?? 0, CRUISE_MPH) * MPH_TO_MPS;
  return Math.round(distanceMeters(from, to) / mps);
}
