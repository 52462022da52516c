/**
 * FleetDeviceStatus, derived with seed 001's priorities ("How FleetDeviceStatus Is Computed"):
 * offline, then an active trip, then FO tasks in progress, then pending ones, then deployment.
 * An active trip of type DEPLOYMENT reads as DEPLOYING: the robot is on its way to be deployed.
 */

export const fleetStatuses = [
  'ON_TRIP',
  'DEPLOYING',
  'DEPLOYED',
  'NEEDS_UNDEPLOYMENT',
  'UNDEPLOYED',
  'NEEDS_MAINTENANCE',
  'UNDER_MAINTENANCE',
  'OFFLINE',
] as const;
export type FleetStatus = (typeof fleetStatuses)[number];

export type FleetFacts = {
  online: boolean;
  activeTrip?: { tripId: string; tripType?: string | null; stage?: string | null } | null;
  foTasks?: { taskId: string; status: string }[];
  deployment?: { deploymentId: string; needsPickup?: boolean } | null;
};

/** The business facts the status needs, without `online` (the robot workflow's own decision). */
export type BusinessFacts = Omit<FleetFacts, 'online'>;

/** What the robot workflow is sent; `version` only grows, so an older update never replaces a newer one. */
export type FleetFactsUpdate = { version: number; facts: BusinessFacts };

export type FleetStatusDecision = { status: FleetStatus; statusReason: string };

export function computeFleetStatus(facts: FleetFacts): FleetStatusDecision {
  if (!facts.online) return { status: 'OFFLINE', statusReason: 'No heartbeat within the offline threshold' };
  if (facts.activeTrip) {
    const { tripId, tripType, stage } = facts.activeTrip;
    const at = stage ? ` (${stage})` : '';
    return tripType === 'DEPLOYMENT'
      ? { status: 'DEPLOYING', statusReason: `On deployment trip ${tripId}${at}` }
      : { status: 'ON_TRIP', statusReason: `On trip ${tripId}${at}` };
  }
  const tasks = facts.foTasks ?? [];
  const inProgress = tasks.filter((t) => t.status === 'IN_PROGRESS');
  if (inProgress.length > 0) return { status: 'UNDER_MAINTENANCE', statusReason: `FO task ${inProgress[0].taskId} in progress` };
  const pending = tasks.filter((t) => t.status === 'PENDING' || t.status === 'ASSIGNED');
  if (pending.length > 0) return { status: 'NEEDS_MAINTENANCE', statusReason: `FO task ${pending[0].taskId} pending` };
  if (facts.deployment) {
    return facts.deployment.needsPickup
      ? { status: 'NEEDS_UNDEPLOYMENT', statusReason: `Deployment ${facts.deployment.deploymentId} needs pickup` }
      : { status: 'DEPLOYED', statusReason: `Deployed (${facts.deployment.deploymentId})` };
  }
  return { status: 'UNDEPLOYED', statusReason: 'Online, not deployed, no trip or FO task' };
}

/** The status the robot workflow keeps: its own `online` with the newest business facts it was sent. */
export function fleetStatusFor(online: boolean, update: FleetFactsUpdate | null): FleetStatusDecision {
  return computeFleetStatus({ online, ...(update?.facts ?? {}) });
}
