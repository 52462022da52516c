/**
 * Staged Greengrass rollouts (workflows/deployment.ts): the request, the stage plan, how
 * Greengrass execution states map onto a device's rollout status, the failure budget, canary
 * health, and the progress view that the API serves. Pure: no Temporal, AWS or database.
 */

// --- Targets ---------------------------------------------------------------------------------

export const TARGET_ARN = /^arn:(aws[a-z-]*):iot:([a-z0-9-]+):(\d{12}):(thing|thinggroup)\/([a-zA-Z0-9:_-]{1,128})$/;

export type Target = { arn: string; kind: 'thing' | 'thinggroup'; name: string; partition: string; region: string; account: string };

export function parseTargetArn(arn: string): Target | null {
  const m = TARGET_ARN.exec(arn);
  if (!m) return null;
  return { arn, partition: m[1], region: m[2], account: m[3], kind: m[4] as Target['kind'], name: m[5] };
}

/** A robot's core device is the IoT thing named by its serial (CONTRACT.md "Greengrass"). */
export const thingArn = (t: Pick<Target, 'partition' | 'region' | 'account'>, serial: string) =>
  `arn:${t.partition}:iot:${t.region}:${t.account}:thing/${serial}`;

// --- The request: its schema is in rollout-request.ts (zod stays out of the workflow bundle) ----

import type { Components, RolloutPolicy } from './rollout-request';
export type { Components, RolloutPolicy, StartDeployment } from './rollout-request';

// --- Stages ----------------------------------------------------------------------------------

export type StageName = 'CANARY' | 'ROLLOUT';
/** One Greengrass deployment to create: a canary thing each, or the whole target for the rest. */
export type PlannedDeployment = { targetArn: string; serials: string[] };
export type StagePlan = { name: StageName; serials: string[]; deployments: PlannedDeployment[] };

/**
 * Canaries (the first N serials in order, or the serials named) each get a deployment of their
 * own; the rest get one deployment to the original target. For a thing group that deployment
 * reaches the canaries too, which already run the same components, and any robot that joins the
 * group later. Named canaries that are not members of the target are an error.
 */
export function planStages(target: Target, members: string[], policy: Pick<RolloutPolicy, 'canaryDevices'>): StagePlan[] {
  const sorted = [...new Set(members)].sort();
  let canaries: string[];
  if (Array.isArray(policy.canaryDevices)) {
    const missing = policy.canaryDevices.filter((s) => !sorted.includes(s));
    if (missing.length > 0) throw new RolloutPlanError(`canary devices not in the target: ${missing.join(', ')}`);
    canaries = [...new Set(policy.canaryDevices)].sort();
  } else {
    canaries = sorted.slice(0, policy.canaryDevices);
  }
  const rest = sorted.filter((s) => !canaries.includes(s));
  const stages: StagePlan[] = [];
  if (canaries.length > 0) {
    stages.push({ name: 'CANARY', serials: canaries, deployments: canaries.map((s) => ({ targetArn: thingArn(target, s), serials: [s] })) });
  }
  if (rest.length > 0) stages.push({ name: 'ROLLOUT', serials: rest, deployments: [{ targetArn: target.arn, serials: rest }] });
  return stages;
}

export class RolloutPlanError extends Error {}

// --- Device status ---------------------------------------------------------------------------

export const deviceRolloutStatuses = ['PENDING', 'QUEUED', 'IN_PROGRESS', 'SUCCEEDED', 'FAILED', 'CANCELLED', 'SKIPPED'] as const;
export type DeviceRolloutStatus = (typeof deviceRolloutStatuses)[number];

/** Greengrass `coreDeviceExecutionStatus` (ListEffectiveDeployments) to our status; absent: not received yet. */
export function deviceStatusFromGreengrass(execution: string | null | undefined): DeviceRolloutStatus {
  switch (execution) {
    case undefined:
    case null:
      return 'PENDING';
    case 'QUEUED':
      return 'QUEUED';
    case 'IN_PROGRESS':
      return 'IN_PROGRESS';
    case 'SUCCEEDED':
    case 'COMPLETED':
      return 'SUCCEEDED';
    case 'CANCELED':
      return 'CANCELLED';
    default:
      // FAILED, TIMED_OUT, REJECTED, and anything newer Greengrass may add.
      return 'FAILED';
  }
}

export const isTerminal = (s: DeviceRolloutStatus) => s === 'SUCCEEDED' || s === 'FAILED' || s === 'CANCELLED' || s === 'SKIPPED';
/** A device that did not get the software, whether its execution failed or was cancelled. */
export const isFailure = (s: DeviceRolloutStatus) => s === 'FAILED' || s === 'CANCELLED';

export function failurePercent(devices: { status: DeviceRolloutStatus }[]): number {
  if (devices.length === 0) return 0;
  return (devices.filter((d) => isFailure(d.status)).length * 100) / devices.length;
}

/** More than `maxFailurePercent` of all target devices failed (exactly at the limit is within it). */
export function exceedsFailureBudget(devices: { status: DeviceRolloutStatus }[], maxFailurePercent: number): boolean {
  const failed = devices.filter((d) => isFailure(d.status)).length;
  return failed * 100 > maxFailurePercent * devices.length;
}

// --- Canary health ---------------------------------------------------------------------------

/** Lifecycle states of a healthy deployed component: FINISHED is a run-once component that ran. */
const HEALTHY_LIFECYCLE = new Set(['RUNNING', 'FINISHED']);

export type CanaryObservation = {
  serial: string;
  coreStatus: string | null;
  installed: { componentName: string; componentVersion: string; lifecycleState: string }[];
  online: boolean | null;
  criticalComponents: string[];
};

/** Why a canary is not healthy; empty when it is (Greengrass components, core status, heartbeat). */
export function canaryProblems(o: CanaryObservation, components: Record<string, { componentVersion: string }>): string[] {
  const problems: string[] = [];
  if (o.coreStatus === 'UNHEALTHY') problems.push('Greengrass core device is UNHEALTHY');
  for (const [name, spec] of Object.entries(components)) {
    const c = o.installed.find((i) => i.componentName === name);
    if (!c) problems.push(`component ${name} is not installed`);
    else if (c.componentVersion !== spec.componentVersion) problems.push(`component ${name} runs ${c.componentVersion}, not ${spec.componentVersion}`);
    else if (!HEALTHY_LIFECYCLE.has(c.lifecycleState)) problems.push(`component ${name} is ${c.lifecycleState}`);
  }
  if (o.online === null) problems.push('robot has never sent a heartbeat');
  else if (!o.online) problems.push('robot is offline');
  for (const name of o.criticalComponents) problems.push(`robot reports CRITICAL_FAULT on ${name}`);
  return problems;
}

// --- Events ----------------------------------------------------------------------------------

/**
 * A rollout's events are `Rollout.*`. Seed 001's `Deployment.*` is a robot placed at a location
 * (an inbound fact), so a consumer bound to `Deployment.#` got both; rollouts started before the
 * rename keep `Deployment.*` to their end (workflows/deployment.ts, patched('rollout-event-names')).
 */
export type RolloutEventNames = 'Rollout' | 'Deployment';
export type RolloutEvent = 'Started' | 'StageCompleted' | 'Succeeded' | 'Failed' | 'Cancelled';

export const rolloutEventType = (names: RolloutEventNames, event: RolloutEvent) => `${names}.${event}` as const;

/** The event a rollout ends with. */
export const rolloutEndEvent = (status: 'SUCCEEDED' | 'FAILED' | 'CANCELLED'): RolloutEvent =>
  status === 'SUCCEEDED' ? 'Succeeded' : status === 'FAILED' ? 'Failed' : 'Cancelled';

// --- Progress --------------------------------------------------------------------------------

export const rolloutStatuses = ['PENDING', 'IN_PROGRESS', 'SUCCEEDED', 'FAILED', 'CANCELLED'] as const;
export type RolloutStatus = (typeof rolloutStatuses)[number];
export const rolloutPhases = ['RESOLVING_TARGET', 'CANARY', 'SOAK', 'ROLLOUT', 'DONE'] as const;
export type RolloutPhase = (typeof rolloutPhases)[number];

export type DeviceProgress = {
  serial: string;
  stage: StageName;
  status: DeviceRolloutStatus;
  /** Greengrass's own word for it (coreDeviceExecutionStatus), null before the device received it. */
  greengrassStatus: string | null;
  reason: string | null;
  greengrassDeploymentId: string | null;
  updatedAt: string | null;
};

export type GreengrassDeploymentRef = {
  greengrassDeploymentId: string;
  targetArn: string;
  stage: StageName;
  status: string;
  iotJobId: string | null;
  createdAt: string;
};

export type DeploymentView = {
  deploymentId: string;
  requestId: string | null;
  targetArn: string;
  components: Components;
  rollout: RolloutPolicy;
  status: RolloutStatus;
  phase: RolloutPhase;
  reason: string | null;
  cancelRequested: boolean;
  devices: DeviceProgress[];
  greengrassDeployments: GreengrassDeploymentRef[];
  deviceCounts: Record<DeviceRolloutStatus | 'total', number>;
  failurePercent: number;
  createdAt: string;
  updatedAt: string;
  completedAt: string | null;
  /** Grows with every change, so a late projection write never overwrites a newer one. */
  version: number;
};

/** A rollout before its target is resolved: the API's first row (version 0) and the workflow's first view (version 1). */
export function pendingDeploymentView(
  start: Pick<DeploymentView, 'deploymentId' | 'requestId' | 'targetArn' | 'components' | 'rollout' | 'createdAt'>,
  updatedAt: string,
  version: number,
): DeploymentView {
  return {
    deploymentId: start.deploymentId,
    requestId: start.requestId,
    targetArn: start.targetArn,
    components: start.components,
    rollout: start.rollout,
    status: 'PENDING',
    phase: 'RESOLVING_TARGET',
    reason: null,
    cancelRequested: false,
    devices: [],
    greengrassDeployments: [],
    deviceCounts: deviceCounts([]),
    failurePercent: 0,
    createdAt: start.createdAt,
    updatedAt,
    completedAt: null,
    version,
  };
}

export function deviceCounts(devices: { status: DeviceRolloutStatus }[]): DeploymentView['deviceCounts'] {
  const counts = Object.fromEntries(deviceRolloutStatuses.map((s) => [s, 0])) as DeploymentView['deviceCounts'];
  counts.total = devices.length;
  for (const d of devices) counts[d.status] += 1;
  return counts;
}

export type DeviceUpdate = { serial: string; greengrassStatus: string | null; reason: string | null; greengrassDeploymentId: string };

/** Applies polled execution states; a device already terminal keeps its outcome. */
export function applyDeviceUpdates(devices: DeviceProgress[], updates: DeviceUpdate[], at: string): DeviceProgress[] {
  const bySerial = new Map(updates.map((u) => [u.serial, u]));
  return devices.map((d) => {
    const u = bySerial.get(d.serial);
    if (!u || isTerminal(d.status)) return d;
    const status = deviceStatusFromGreengrass(u.greengrassStatus);
    if (status === d.status && u.greengrassStatus === d.greengrassStatus && u.reason === d.reason) return d;
    return { ...d, status, greengrassStatus: u.greengrassStatus, reason: u.reason, greengrassDeploymentId: u.greengrassDeploymentId, updatedAt: at };
  });
}

/**
 * After the rollout stopped (and its Greengrass deployments were cancelled): a device never
 * reached by a deployment is SKIPPED; one whose deployment was cancelled before it arrived is
 * CANCELLED; one already installing keeps its last known state, since Greengrass lets it finish.
 */
export function closeOutDevices(devices: DeviceProgress[], reason: string, at: string): DeviceProgress[] {
  return devices.map((d): DeviceProgress => {
    if (d.status !== 'PENDING') return d;
    return { ...d, status: d.greengrassDeploymentId === null ? 'SKIPPED' : 'CANCELLED', reason, updatedAt: at };
  });
}

/** Greengrass deployment states after which nothing more will reach a device. */
export const isGreengrassDeploymentOver = (status: string) => status === 'CANCELED' || status === 'FAILED' || status === 'INACTIVE';
