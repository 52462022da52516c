import { computeFleetStatus, fleetStatuses, type FleetFacts } from '../../domain/fleet-status';

const trip = { tripId: 'trip-1', tripType: 'DELIVERY' };
const inProgress = { taskId: 'task-ip', status: 'IN_PROGRESS' };
const pending = { taskId: 'task-p', status: 'PENDING' };
const assigned = { taskId: 'task-a', status: 'ASSIGNED' };
const done = { taskId: 'task-d', status: 'COMPLETED' };
const cancelled = { taskId: 'task-c', status: 'CANCELLED' };
const deployed = { deploymentId: 'dep-1' };
const needsPickup = { deploymentId: 'dep-2', needsPickup: true };

function status(facts: FleetFacts) {
  const result = computeFleetStatus(facts);
  expect(fleetStatuses).toContain(result.status);
  expect(result.statusReason.trim()).not.toBe('');
  return result.status;
}

describe('computeFleetStatus (seed 001 priorities)', () => {
  it('1. offline beats everything', () => {
    expect(status({ online: false })).toBe('OFFLINE');
    expect(status({ online: false, activeTrip: trip, foTasks: [inProgress, pending], deployment: needsPickup })).toBe('OFFLINE');
  });

  it('2. an active trip beats FO tasks and deployment', () => {
    expect(status({ online: true, activeTrip: trip })).toBe('ON_TRIP');
    expect(status({ online: true, activeTrip: trip, foTasks: [inProgress, pending], deployment: needsPickup })).toBe('ON_TRIP');
  });

  it('3. an FO task in progress beats pending tasks and deployment', () => {
    expect(status({ online: true, foTasks: [pending, inProgress], deployment: needsPickup })).toBe('UNDER_MAINTENANCE');
    expect(status({ online: true, activeTrip: null, foTasks: [inProgress] })).toBe('UNDER_MAINTENANCE');
  });

  it('4. a pending or assigned FO task beats deployment', () => {
    expect(status({ online: true, foTasks: [pending], deployment: deployed })).toBe('NEEDS_MAINTENANCE');
    expect(status({ online: true, foTasks: [assigned], deployment: needsPickup })).toBe('NEEDS_MAINTENANCE');
  });

  it('5. deployment: deployed, or needing pickup', () => {
    expect(status({ online: true, deployment: deployed })).toBe('DEPLOYED');
    expect(status({ online: true, deployment: { ...deployed, needsPickup: false } })).toBe('DEPLOYED');
    expect(status({ online: true, deployment: needsPickup })).toBe('NEEDS_UNDEPLOYMENT');
  });

  it('6. online with nothing else is undeployed', () => {
    expect(status({ online: true })).toBe('UNDEPLOYED');
    expect(status({ online: true, activeTrip: null, foTasks: [], deployment: null })).toBe('UNDEPLOYED');
  });

  it('ignores finished FO tasks', () => {
    expect(status({ online: true, foTasks: [done, cancelled] })).toBe('UNDEPLOYED');
    expect(status({ online: true, foTasks: [done, cancelled], deployment: deployed })).toBe('DEPLOYED');
  });

  it('names the trip, task or deployment in the reason', () => {
    expect(computeFleetStatus({ online: true, activeTrip: trip }).statusReason).toContain('trip-1');
    expect(computeFleetStatus({ online: true, foTasks: [inProgress] }).statusReason).toContain('task-ip');
    expect(computeFleetStatus({ online: true, foTasks: [assigned] }).statusReason).toContain('task-a');
    expect(computeFleetStatus({ online: true, deployment: needsPickup }).statusReason).toContain('dep-2');
  });
});
