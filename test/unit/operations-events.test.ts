import { operationsEventBatchSchema, operationsEventSchema } from '../../domain/operations-events';

const base = { id: 'e1', serial: 'R1', occurredAt: '2026-01-01T12:00:00.000Z' };
const issue = (input: unknown) => {
  const result = operationsEventSchema.safeParse(input);
  expect(result.success).toBe(false);
  const first = result.error!.issues[0];
  return `${first.path.join('.')}: ${first.message}`;
};

describe('operations event schemas', () => {
  it('accepts each contract type and strips the seed enum prefixes', () => {
    expect(operationsEventSchema.parse({ ...base, type: 'Trip.StageChanged', data: { tripId: 't', stage: 'TRIP_STAGE_AT_PICKUP' } }).data).toEqual({ tripId: 't', stage: 'AT_PICKUP' });
    expect(operationsEventSchema.parse({ ...base, type: 'Trip.Created', data: { tripId: 't', tripType: 'DELIVERY' } }).data).toEqual({ tripId: 't', tripType: 'DELIVERY' });
    expect(operationsEventSchema.parse({ ...base, type: 'FoTask.Created', data: { taskId: 'k', taskType: 'FO_TASK_TYPE_REPAIR', status: 'PENDING' } }).data).toMatchObject({ taskType: 'REPAIR' });
    expect(operationsEventSchema.parse({ ...base, type: 'ProviderMapping.Created', data: { provider: 'DoorDash', providerVehicleId: 'v', deliveryId: 'd', dropoff: { lat: 1, lng: 2 } } }).data).toMatchObject({ provider: 'doordash' });
    for (const [type, data] of [
      ['Trip.Completed', { tripId: 't', outcome: 'DELIVERED' }],
      ['FoTask.StatusChanged', { taskId: 'k', status: 'IN_PROGRESS' }],
      ['Deployment.Created', { deploymentId: 'p', locationId: 'L' }],
      ['Deployment.Ended', { deploymentId: 'p' }],
      ['ProviderMapping.Ended', { provider: 'doordash', deliveryId: 'd' }],
    ] as const) {
      expect(operationsEventSchema.safeParse({ ...base, type, data }).success).toBe(true);
    }
  });

  it('names the offending field', () => {
    expect(issue({ ...base, type: 'Trip.Teleported', data: {} })).toMatch(/^type: /);
    expect(issue({ ...base, type: 'Trip.StageChanged', data: { tripId: 't', stage: 'FLYING' } })).toMatch(/^data\.stage: /);
    expect(issue({ ...base, type: 'FoTask.StatusChanged', data: { taskId: 't' } })).toMatch(/^data\.status: /);
    expect(issue({ ...base, occurredAt: 'yesterday', type: 'Deployment.Ended', data: { deploymentId: 'p' } })).toMatch(/^occurredAt: /);
    expect(issue({ ...base, serial: 'no spaces', type: 'Deployment.Ended', data: { deploymentId: 'p' } })).toMatch(/^serial: /);
    expect(issue({ ...base, type: 'ProviderMapping.Created', data: { provider: 'doordash', providerVehicleId: 'v', deliveryId: 'd', dropoff: { lat: 95, lng: 0 } } })).toMatch(/^data\.dropoff\.lat: /);
  });

  it('takes batches of 1 to 500', () => {
    const event = { ...base, type: 'Deployment.Ended', data: { deploymentId: 'p' } };
    expect(operationsEventBatchSchema.safeParse({ events: [] }).success).toBe(false);
    expect(operationsEventBatchSchema.safeParse({ events: Array(501).fill(event) }).success).toBe(false);
    expect(operationsEventBatchSchema.parse({ events: [event, event] }).events).toHaveLength(2);
  });
});
