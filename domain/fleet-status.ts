/**
 * FleetDeviceStatus, derived with seed 001's priorities ("How FleetDeviceStatus Is Computed"):
 * offline, then an active trip, then FO tasks in progress, then pending ones, then deployment.
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
  activeTrip?: { tripId: string; tripType?: string } | null;
  foTasks?: { taskId: string; status: string }[];
  deployment?: { deploymentId: string; needsPickup?: boolean } | null;
};

export function computeFleetStatus(facts: FleetFacts): { status: FleetStatus; statusReason: string } {
  if (!facts.online) return { status: 'OFFLINE', statusReason: 'No heartbeat within the offline threshold' };
  if (facts.activeTrip) {
    return { status: 'ON_TRIP', statusReason: `On trip ${facts.activeTrip.tripId}` };
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
