import {
  applyDeviceUpdates,
  canaryProblems,
  closeOutDevices,
  deviceStatusFromGreengrass,
  exceedsFailureBudget,
  failurePercent,
  parseTargetArn,
  planStages,
  rolloutEndEvent,
  rolloutEventType,
  RolloutPlanError,
  type DeviceProgress,
} from '../../domain/rollout';
import { startDeploymentSchema } from '../../domain/rollout-request';
import { sweepIntervalMs, toGreengrassStatus } from '../../domain/software';

const group = parseTargetArn('arn:aws:iot:eu-west-1:123456789012:thinggroup/berlin')!;
const thing = parseTargetArn('arn:aws:iot:eu-west-1:123456789012:thing/R1')!;

describe('parseTargetArn', () => {
  it('reads thing and thing group ARNs', () => {
    expect(group).toMatchObject({ kind: 'thinggroup', name: 'berlin', region: 'eu-west-1', account: '123456789012', partition: 'aws' });
    expect(thing).toMatchObject({ kind: 'thing', name: 'R1' });
  });
  it('rejects anything else', () => {
    for (const arn of ['', 'R1', 'arn:aws:iot:eu-west-1:123:thing/R1', 'arn:aws:s3:eu-west-1:123456789012:thing/R1', 'arn:aws:iot:eu-west-1:123456789012:job/x']) {
      expect(parseTargetArn(arn)).toBeNull();
    }
  });
});

describe('planStages', () => {
  it('gives each canary a deployment of its own and the rest one deployment to the group', () => {
    const stages = planStages(group, ['R3', 'R1', 'R2', 'R4'], { canaryDevices: 2 });
    expect(stages).toEqual([
      {
        name: 'CANARY',
        serials: ['R1', 'R2'],
        deployments: [
          { targetArn: 'arn:aws:iot:eu-west-1:123456789012:thing/R1', serials: ['R1'] },
          { targetArn: 'arn:aws:iot:eu-west-1:123456789012:thing/R2', serials: ['R2'] },
        ],
      },
      { name: 'ROLLOUT', serials: ['R3', 'R4'], deployments: [{ targetArn: group.arn, serials: ['R3', 'R4'] }] },
    ]);
  });
  it('without canaries deploys to the whole target at once', () => {
    expect(planStages(group, ['R2', 'R1'], { canaryDevices: 0 })).toEqual([
      { name: 'ROLLOUT', serials: ['R1', 'R2'], deployments: [{ targetArn: group.arn, serials: ['R1', 'R2'] }] },
    ]);
  });
  it('takes named canaries, and refuses ones outside the target', () => {
    expect(planStages(group, ['R1', 'R2', 'R3'], { canaryDevices: ['R3'] })[0].serials).toEqual(['R3']);
    expect(() => planStages(group, ['R1'], { canaryDevices: ['R9'] })).toThrow(RolloutPlanError);
  });
  it('with as many canaries as devices has no second stage', () => {
    expect(planStages(thing, ['R1'], { canaryDevices: 5 }).map((s) => s.name)).toEqual(['CANARY']);
  });
});

describe('device status', () => {
  it('maps Greengrass execution states', () => {
    expect(deviceStatusFromGreengrass(null)).toBe('PENDING');
    expect(deviceStatusFromGreengrass('QUEUED')).toBe('QUEUED');
    expect(deviceStatusFromGreengrass('IN_PROGRESS')).toBe('IN_PROGRESS');
    expect(deviceStatusFromGreengrass('SUCCEEDED')).toBe('SUCCEEDED');
    expect(deviceStatusFromGreengrass('COMPLETED')).toBe('SUCCEEDED');
    expect(deviceStatusFromGreengrass('CANCELED')).toBe('CANCELLED');
    for (const s of ['FAILED', 'TIMED_OUT', 'REJECTED', 'SOMETHING_NEW']) expect(deviceStatusFromGreengrass(s)).toBe('FAILED');
  });

  const device = (serial: string, patch: Partial<DeviceProgress> = {}): DeviceProgress => ({
    serial,
    stage: 'ROLLOUT',
    status: 'PENDING',
    greengrassStatus: null,
    reason: null,
    greengrassDeploymentId: 'gg-1',
    updatedAt: null,
    ...patch,
  });

  it('applies updates but never changes a finished device', () => {
    const devices = [device('R1'), device('R2', { status: 'FAILED', greengrassStatus: 'FAILED', reason: 'broken' })];
    const next = applyDeviceUpdates(
      devices,
      [
        { serial: 'R1', greengrassStatus: 'IN_PROGRESS', reason: null, greengrassDeploymentId: 'gg-1' },
        { serial: 'R2', greengrassStatus: 'SUCCEEDED', reason: null, greengrassDeploymentId: 'gg-1' },
      ],
      '2026-01-01T00:00:00.000Z',
    );
    expect(next[0]).toMatchObject({ status: 'IN_PROGRESS', greengrassStatus: 'IN_PROGRESS', updatedAt: '2026-01-01T00:00:00.000Z' });
    expect(next[1]).toBe(devices[1]);
  });

  it('closes out: never reached is SKIPPED, cancelled before arrival CANCELLED, installing keeps its state', () => {
    const out = closeOutDevices(
      [device('R1', { greengrassDeploymentId: null }), device('R2'), device('R3', { status: 'IN_PROGRESS' })],
      'cancelled',
      'now',
    );
    expect(out.map((d) => d.status)).toEqual(['SKIPPED', 'CANCELLED', 'IN_PROGRESS']);
  });

  it('counts failed and cancelled devices against the budget; exactly at the limit is within it', () => {
    const devices = [device('R1', { status: 'FAILED' }), device('R2', { status: 'SUCCEEDED' }), device('R3', { status: 'SUCCEEDED' }), device('R4', { status: 'CANCELLED' })];
    expect(failurePercent(devices)).toBe(50);
    expect(exceedsFailureBudget(devices, 50)).toBe(false);
    expect(exceedsFailureBudget(devices, 49.9)).toBe(true);
    expect(exceedsFailureBudget(devices.slice(1, 3), 0)).toBe(false);
    expect(failurePercent([])).toBe(0);
  });
});

describe('canaryProblems', () => {
  const components = { 'com.coco.Nav': { componentVersion: '1.2.0' } };
  const healthy = {
    serial: 'R1',
    coreStatus: 'HEALTHY',
    installed: [{ componentName: 'com.coco.Nav', componentVersion: '1.2.0', lifecycleState: 'RUNNING' }],
    online: true,
    criticalComponents: [],
  };
  it('finds none on a robot running the new version, online, without critical faults', () => {
    expect(canaryProblems(healthy, components)).toEqual([]);
    expect(canaryProblems({ ...healthy, installed: [{ ...healthy.installed[0], lifecycleState: 'FINISHED' }] }, components)).toEqual([]);
  });
  it('names every problem', () => {
    expect(
      canaryProblems({ ...healthy, coreStatus: 'UNHEALTHY', installed: [{ ...healthy.installed[0], lifecycleState: 'BROKEN' }], online: false, criticalComponents: ['GPS'] }, components),
    ).toEqual(['Greengrass core device is UNHEALTHY', 'component com.coco.Nav is BROKEN', 'robot is offline', 'robot reports CRITICAL_FAULT on GPS']);
    expect(canaryProblems({ ...healthy, installed: [] }, components)).toEqual(['component com.coco.Nav is not installed']);
    expect(canaryProblems({ ...healthy, installed: [{ ...healthy.installed[0], componentVersion: '1.1.0' }] }, components)).toEqual([
      'component com.coco.Nav runs 1.1.0, not 1.2.0',
    ]);
    expect(canaryProblems({ ...healthy, online: null }, components)).toEqual(['robot has never sent a heartbeat']);
  });
});

describe('startDeploymentSchema', () => {
  const valid = { targetArn: group.arn, components: { 'com.coco.Nav': { componentVersion: '1.2.0' } } };
  it('fills in the rollout defaults', () => {
    expect(startDeploymentSchema.parse(valid).rollout).toEqual({ canaryDevices: 0, soakSeconds: 300, maxFailurePercent: 0, deadlineSeconds: 86_400 });
  });
  it('names the offending field', () => {
    const path = (input: unknown) => startDeploymentSchema.safeParse(input).error?.issues[0].path.join('.');
    expect(path({ ...valid, targetArn: 'nope' })).toBe('targetArn');
    expect(path({ ...valid, components: {} })).toBe('components');
    expect(path({ ...valid, components: { 'com.coco.Nav': { componentVersion: 'latest' } } })).toBe('components.com.coco.Nav.componentVersion');
    expect(path({ ...valid, rollout: { maxFailurePercent: 101 } })).toBe('rollout.maxFailurePercent');
    expect(path({ ...valid, rollout: { canaryDevices: -1 } })).toBe('rollout.canaryDevices');
  });
});

describe('software status', () => {
  it('shows Greengrass states as the seed enums', () => {
    const status = toGreengrassStatus({
      coreDevice: { status: 'HEALTHY', coreVersion: null, platform: null, architecture: null, lastStatusUpdateAt: null },
      installedComponents: [
        { componentName: 'a', componentVersion: '1.0.0', lifecycleState: 'RUNNING', lifecycleStateDetails: null, isRoot: true, lastStatusChangeAt: null },
        { componentName: 'b', componentVersion: '1.0.0', lifecycleState: 'FINISHED', lifecycleStateDetails: null, isRoot: true, lastStatusChangeAt: null },
      ],
      updatedAt: 'then',
    });
    expect(status).toEqual({
      coreStatus: 'GREENGRASS_CORE_STATUS_HEALTHY',
      installedComponents: [
        { componentName: 'a', componentVersion: '1.0.0', lifecycleState: 'COMPONENT_LIFECYCLE_STATE_RUNNING' },
        { componentName: 'b', componentVersion: '1.0.0', lifecycleState: 'COMPONENT_LIFECYCLE_STATE_UNSPECIFIED' },
      ],
      updatedAt: 'then',
    });
  });
  it('sweeps the fleet in an interval that grows with it', () => {
    expect(sweepIntervalMs(5, 5, 60_000)).toBe(60_000);
    expect(sweepIntervalMs(10_000, 5, 60_000)).toBe(2_000_000);
  });
});

test('rollout events are Rollout.*; a rollout started before the rename keeps Deployment.*', () => {
  expect((['SUCCEEDED', 'FAILED', 'CANCELLED'] as const).map((s) => rolloutEventType('Rollout', rolloutEndEvent(s)))).toEqual(['Rollout.Succeeded', 'Rollout.Failed', 'Rollout.Cancelled']);
  expect(rolloutEventType('Deployment', 'StageCompleted')).toBe('Deployment.StageCompleted');
});
