import type { TripStage } from './operations-events';

/**
 * A partner delivery as the partner-delivery workflow follows it, provider-agnostic: the trip's
 * stage, its outcome and whether the provider mapping has ended. The API sends whole snapshots
 * read from the replicas, so a repeated or late snapshot merges without moving anything back.
 */

export type DeliverySnapshot = {
  stage: TripStage | null;
  /** When the stage was reached (epoch ms). */
  stageAt: number | null;
  outcome: string | null;
  ended: boolean;
};

export const emptySnapshot: DeliverySnapshot = { stage: null, stageAt: null, outcome: null, ended: false };

/** The newer stage wins; an outcome and the end, once known, stay. */
export function mergeSnapshot(current: DeliverySnapshot, incoming: DeliverySnapshot): DeliverySnapshot {
  const stageNewer = incoming.stage !== null && (current.stageAt === null || (incoming.stageAt ?? 0) > current.stageAt);
  return {
    stage: stageNewer ? incoming.stage : current.stage,
    stageAt: stageNewer ? incoming.stageAt : current.stageAt,
    outcome: current.outcome ?? incoming.outcome,
    ended: current.ended || incoming.ended,
  };
}

/** Two snapshots a partner would be told apart: a change here is pushed at once. */
export const partnerVisible = (s: DeliverySnapshot) => `${s.stage ?? ''}|${s.outcome ?? ''}`;

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
