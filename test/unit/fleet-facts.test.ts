import {
  applyDeploymentCreated,
  applyDeploymentEnded,
  applyDeliveryStatusChanged,
  applyFoTaskCreated,
  applyFoTaskStatusChanged,
  applyProviderMappingCreated,
  applyProviderMappingEnded,
  applyTripCompleted,
  applyTripCreated,
  applyTripStageChanged,
  businessFacts,
  fleetRowFacts,
  type DeliveryReplica,
  type TripReplica,
} from '../../domain/fleet-facts';
import { computeFleetStatus } from '../../domain/fleet-status';
import { operationsEventSchema, type OperationsEvent, type OperationsEventOf } from '../../domain/operations-events';

const at = (second: number) => new Date(Date.UTC(2026, 0, 1, 12, 0, second)).toISOString();
let n = 0;
function fact<T extends OperationsEvent['type']>(type: T, second: number, data: Record<string, unknown>, serial = 'R1'): OperationsEventOf<T> {
  return operationsEventSchema.parse({ id: `e${++n}`, type, serial, occurredAt: at(second), data }) as OperationsEventOf<T>;
}

describe('trip facts', () => {
  const created = fact('Trip.Created', 1, { tripId: 't1', tripType: 'DELIVERY', deliveryId: 'd1' });
  const atPickup = fact('Trip.StageChanged', 5, { tripId: 't1', stage: 'AT_PICKUP' });
  const enRoute = fact('Trip.StageChanged', 3, { tripId: 't1', stage: 'EN_ROUTE_TO_PICKUP' });
  const completed = fact('Trip.Completed', 9, { tripId: 't1', outcome: 'DELIVERED' });

  it('in order: created, stages, completed', () => {
    let trip = applyTripCreated(null, created)!;
    expect(trip).toMatchObject({ stage: 'SCHEDULED', tripType: 'DELIVERY', deliveryId: 'd1', endedAt: null });
    trip = applyTripStageChanged(trip, enRoute)!;
    trip = applyTripStageChanged(trip, atPickup)!;
    expect(trip.stage).toBe('AT_PICKUP');
    trip = applyTripCompleted(trip, completed)!;
    expect(trip).toMatchObject({ stage: 'COMPLETED', outcome: 'DELIVERED', endedAt: Date.parse(at(9)) });
  });

  it('an older stage never replaces a newer one', () => {
    const trip = applyTripStageChanged(applyTripCreated(null, created), atPickup)!;
    expect(applyTripStageChanged(trip, enRoute)).toBeNull();
  });

  it('a Created that arrives last fills in the type but keeps the stage', () => {
    const trip = applyTripCreated(applyTripStageChanged(null, atPickup), created)!;
    expect(trip).toMatchObject({ stage: 'AT_PICKUP', tripType: 'DELIVERY', deliveryId: 'd1', startedAt: Date.parse(at(1)) });
  });

  it('completion is final: a late stage does not reopen the trip, a repeat changes nothing', () => {
    const done = applyTripCompleted(applyTripCreated(null, created), completed)!;
    expect(applyTripStageChanged(done, atPickup)).toBeNull();
    expect(applyTripStageChanged(done, fact('Trip.StageChanged', 20, { tripId: 't1', stage: 'AT_DROPOFF' }))).toBeNull();
    expect(applyTripCompleted(done, completed)).toBeNull();
  });

  it('a CANCELLED stage ends the trip; the Completed after it adds the outcome', () => {
    const cancelled = applyTripStageChanged(applyTripCreated(null, created), fact('Trip.StageChanged', 4, { tripId: 't1', stage: 'CANCELLED' }))!;
    expect(cancelled.endedAt).not.toBeNull();
    expect(applyTripCompleted(cancelled, fact('Trip.Completed', 6, { tripId: 't1', outcome: 'CANCELLED' }))).toMatchObject({ stage: 'CANCELLED', outcome: 'CANCELLED' });
  });
});

describe('FO task facts', () => {
  it('statuses apply in time order whatever order they arrive in', () => {
    const created = fact('FoTask.Created', 1, { taskId: 'k1', taskType: 'BATTERY_SWAP', status: 'PENDING' });
    const started = fact('FoTask.StatusChanged', 5, { taskId: 'k1', status: 'IN_PROGRESS' });
    const done = fact('FoTask.StatusChanged', 9, { taskId: 'k1', status: 'COMPLETED' });
    const afterDone = applyFoTaskStatusChanged(null, done)!;
    expect(applyFoTaskStatusChanged(afterDone, started)).toBeNull();
    const arrivedLast = applyFoTaskCreated(afterDone, created)!;
    expect(arrivedLast).toMatchObject({ status: 'COMPLETED', taskType: 'BATTERY_SWAP', createdAt: Date.parse(at(1)) });
    expect(applyFoTaskStatusChanged(arrivedLast, started)).toBeNull();
  });
});

describe('deployments and provider mappings', () => {
  it('an end that arrives before the start stays an end', () => {
    const ended = applyDeploymentEnded(null, fact('Deployment.Ended', 9, { deploymentId: 'p1' }))!;
    const late = applyDeploymentCreated(ended, fact('Deployment.Created', 1, { deploymentId: 'p1', locationId: 'L1' }))!;
    expect(late).toMatchObject({ locationId: 'L1', endedAt: Date.parse(at(9)) });
    const mapping = applyProviderMappingEnded(null, fact('ProviderMapping.Ended', 9, { provider: 'doordash', deliveryId: 'd1' }))!;
    expect(applyProviderMappingCreated(mapping, fact('ProviderMapping.Created', 1, { provider: 'DoorDash', providerVehicleId: 'v1', deliveryId: 'd1' }))!.endedAt).not.toBeNull();
  });
});

describe('delivery facts', () => {
  const status = (second: number, value: string, ids: Record<string, string> = {}, serial = 'R1') =>
    fact('Delivery.StatusChanged', second, { deliveryId: 'd1', status: value, ...ids }, serial);

  it('a newer status wins whatever order they arrive in; an older one is stale', () => {
    const atPickup = applyDeliveryStatusChanged(null, status(5, 'AT_PICKUP', { merchantId: 'm1', customerId: 'c1', demandId: 'q1' }))!;
    expect(atPickup).toMatchObject({ status: 'AT_PICKUP', merchantId: 'm1', customerId: 'c1', demandId: 'q1', endedAt: null });
    expect(applyDeliveryStatusChanged(atPickup, status(3, 'EN_ROUTE_TO_PICKUP'))).toBeNull();
    expect(applyDeliveryStatusChanged(atPickup, status(3, 'EN_ROUTE_TO_PICKUP', { merchantId: 'm-old' }))).toBeNull();
    expect(applyDeliveryStatusChanged(atPickup, status(7, 'DELIVERY_STATUS_PICKED_UP'))).toMatchObject({ status: 'PICKED_UP', merchantId: 'm1' });
  });

  it('an older fact fills in an id still missing but never moves the status or the robot back', () => {
    const latest = applyDeliveryStatusChanged(null, status(9, 'EN_ROUTE_TO_DROPOFF', {}, 'R2'))!;
    const filled = applyDeliveryStatusChanged(latest, status(2, 'ASSIGNED', { merchantId: 'm1' }, 'R1'))!;
    expect(filled).toMatchObject({ status: 'EN_ROUTE_TO_DROPOFF', serial: 'R2', merchantId: 'm1', occurredAt: Date.parse(at(9)) });
  });

  it('a terminal status is final', () => {
    const delivered = applyDeliveryStatusChanged(null, status(5, 'DELIVERED'))!;
    expect(delivered.endedAt).toBe(Date.parse(at(5)));
    expect(applyDeliveryStatusChanged(delivered, status(8, 'EN_ROUTE_TO_DROPOFF'))).toBeNull();
    expect(applyDeliveryStatusChanged(delivered, status(8, 'FAILED'))).toBeNull();
  });

  it("the robot's delivery is its trip's, else its newest unfinished one", () => {
    const delivery = (deliveryId: string, occurredAt: number, endedAt: number | null = null): DeliveryReplica => ({
      deliveryId, serial: 'R1', status: endedAt === null ? 'AT_PICKUP' : 'DELIVERED', merchantId: `m-${deliveryId}`, customerId: null, demandId: null, endedAt, occurredAt,
    });
    const trip: TripReplica = { tripId: 't1', serial: 'R1', tripType: 'DELIVERY', stage: 'AT_DROPOFF', deliveryId: 'd-trip', outcome: null, startedAt: 1, endedAt: null, occurredAt: 1 };
    const replicas = { trips: [trip], tasks: [], deployments: [], mappings: [] };
    const onTrip = fleetRowFacts({ ...replicas, deliveries: [delivery('d-other', 9), delivery('d-trip', 2, 3)] });
    expect(onTrip.activeDelivery).toEqual({ deliveryId: 'd-trip', status: 'DELIVERED', merchantId: 'm-d-trip', customerId: null, demandId: null });
    const noTrip = fleetRowFacts({ ...replicas, trips: [], deliveries: [delivery('d-a', 4), delivery('d-b', 6), delivery('d-done', 8, 8)] });
    expect(noTrip.activeDelivery?.deliveryId).toBe('d-b');
    expect(fleetRowFacts(replicas).activeDelivery).toBeNull();
  });
});

describe("a robot's facts and status", () => {
  it('takes the unfinished trip, open tasks and live deployment', () => {
    const trip = (id: string, endedAt: number | null, startedAt: number): TripReplica => ({
      tripId: id, serial: 'R1', tripType: 'DELIVERY', stage: 'AT_PICKUP', deliveryId: null, outcome: null, startedAt, endedAt, occurredAt: startedAt,
    });
    const facts = fleetRowFacts({
      trips: [trip('old', 5, 1), trip('new', null, 2)],
      tasks: [
        { taskId: 'k2', serial: 'R1', taskType: 'REPAIR', status: 'COMPLETED', createdAt: 1, occurredAt: 1 },
        { taskId: 'k1', serial: 'R1', taskType: 'INSPECT', status: 'ASSIGNED', createdAt: 2, occurredAt: 2 },
      ],
      deployments: [{ deploymentId: 'p1', serial: 'R1', locationId: 'L1', needsPickup: false, startedAt: 1, endedAt: null, occurredAt: 1 }],
      mappings: [],
    });
    expect(facts.activeTrip?.tripId).toBe('new');
    expect(facts.foTasks.map((t) => t.taskId)).toEqual(['k1']);
    expect(computeFleetStatus({ online: true, ...businessFacts(facts) }).status).toBe('ON_TRIP');
    expect(computeFleetStatus({ online: true, ...businessFacts({ ...facts, activeTrip: null }) }).status).toBe('NEEDS_MAINTENANCE');
    expect(computeFleetStatus({ online: true, ...businessFacts({ ...facts, activeTrip: null, foTasks: [] }) }).status).toBe('DEPLOYED');
  });

  it('a DEPLOYMENT trip reads as DEPLOYING', () => {
    expect(computeFleetStatus({ online: true, activeTrip: { tripId: 't', tripType: 'DEPLOYMENT' } })).toMatchObject({ status: 'DEPLOYING' });
  });
});
