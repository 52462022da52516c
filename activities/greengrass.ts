import { createHash } from 'node:crypto';
import {
  CancelDeploymentCommand,
  CreateDeploymentCommand,
  GetCoreDeviceCommand,
  GetDeploymentCommand,
  ListCoreDevicesCommand,
  ListEffectiveDeploymentsCommand,
  ListInstalledComponentsCommand,
  type GreengrassV2Client,
} from '@aws-sdk/client-greengrassv2';
import { Context } from '@temporalio/activity';
import { ApplicationFailure, ApplicationFailureCategory } from '@temporalio/common';
import type { Prisma } from '../infra/prisma';
import { canaryProblems, parseTargetArn, type Components, type DeviceUpdate, type StageName } from '../domain/rollout';
import type { SoftwareStatus } from '../domain/software';
import { readCanaryDevices, recordDeployment } from '../store/rollouts';
import { countRobots, listRobotSerials, writeSoftwareStatus } from '../store/software';

/**
 * Effects on AWS IoT Greengrass V2 (through the real SDK client, pointed at AWS or at the local
 * service); the projections of rollouts and robots' software are written through store/rollouts.ts
 * and store/software.ts. AWS errors are classified here: throttling, 5xx and network trouble are
 * retryable; validation, access, not-found and quota errors fail at once with a message the
 * engineer can act on.
 */

/** Sends one command; inside an activity the call is aborted when the activity is cancelled. */
async function call<T>(operation: string, send: (options: { abortSignal?: AbortSignal }) => Promise<T>): Promise<T> {
  try {
    return await send({ abortSignal: activitySignal() });
  } catch (error) {
    throw classifyAwsError(operation, error);
  }
}

function activitySignal(): AbortSignal | undefined {
  try {
    return Context.current().cancellationSignal;
  } catch {
    return undefined;
  }
}

type AwsError = {
  name?: string;
  message?: string;
  code?: string;
  $fault?: string;
  $metadata?: { httpStatusCode?: number };
  fields?: { name?: string; message?: string }[];
};

export const greengrassErrorTypes = {
  throttled: 'GreengrassThrottled',
  unavailable: 'GreengrassUnavailable',
  invalid: 'GreengrassValidation',
  denied: 'GreengrassAccessDenied',
  notFound: 'GreengrassNotFound',
  quota: 'GreengrassQuotaExceeded',
  rejected: 'GreengrassRejected',
  credentials: 'AwsCredentialsMissing',
} as const;

/** What an AWS SDK error means for retrying, as an ApplicationFailure whose message names the operation. */
export function classifyAwsError(operation: string, error: unknown): ApplicationFailure {
  if (error instanceof ApplicationFailure) return error;
  const e = (error ?? {}) as AwsError;
  const status = e.$metadata?.httpStatusCode;
  const fields = e.fields?.length ? ` (${e.fields.map((f) => `${f.name}: ${f.message}`).join('; ')})` : '';
  const message = `Greengrass ${operation} failed: ${e.name ?? 'Error'}: ${e.message ?? String(error)}${fields}`;
  const retryable = (type: string) => ApplicationFailure.create({ message, type, nonRetryable: false, cause: error as Error });
  const fatal = (type: string) => ApplicationFailure.create({ message, type, nonRetryable: true });
  if (e.name === 'AbortError') return retryable('Aborted');
  if (e.name === 'ThrottlingException' || status === 429) return retryable(greengrassErrorTypes.throttled);
  if ((status !== undefined && status >= 500) || e.$fault === 'server') return retryable(greengrassErrorTypes.unavailable);
  if (e.name === 'RequestAlreadyInProgressException' || e.name === 'ConflictException') return retryable(greengrassErrorTypes.unavailable);
  if (e.name === 'CredentialsProviderError') return fatal(greengrassErrorTypes.credentials);
  if (e.name === 'ValidationException') return fatal(greengrassErrorTypes.invalid);
  if (e.name === 'AccessDeniedException' || status === 403 || status === 401) return fatal(greengrassErrorTypes.denied);
  if (e.name === 'ResourceNotFoundException' || status === 404) return fatal(greengrassErrorTypes.notFound);
  if (e.name === 'ServiceQuotaExceededException' || status === 402) return fatal(greengrassErrorTypes.quota);
  if (status !== undefined && status >= 400) return fatal(greengrassErrorTypes.rejected);
  // No HTTP answer at all: connection refused, reset, DNS. The endpoint may come back.
  return retryable(greengrassErrorTypes.unavailable);
}

const isNotFound = (f: ApplicationFailure) => f.type === greengrassErrorTypes.notFound;

async function inBatches<T, R>(items: T[], width: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = [];
  for (let i = 0; i < items.length; i += width) results.push(...(await Promise.all(items.slice(i, i + width).map(fn))));
  return results;
}

const isoFrom = (d: Date | undefined) => (d ? d.toISOString() : null);

// --- Rollouts --------------------------------------------------------------------------------

/** The core devices a target names: one thing, or the members of a thing group (ListCoreDevices). */
export async function resolveTargetDevices(gg: GreengrassV2Client, targetArn: string): Promise<string[]> {
  const target = parseTargetArn(targetArn);
  if (!target) throw ApplicationFailure.nonRetryable(`targetArn ${targetArn} is not a thing or thing group ARN`, greengrassErrorTypes.invalid);
  if (target.kind === 'thing') {
    try {
      await call('GetCoreDevice', (o) => gg.send(new GetCoreDeviceCommand({ coreDeviceThingName: target.name }), o));
    } catch (error) {
      if (error instanceof ApplicationFailure && isNotFound(error)) {
        throw ApplicationFailure.nonRetryable(`robot ${target.name} is not a Greengrass core device (${error.message})`, greengrassErrorTypes.notFound);
      }
      throw error;
    }
    return [target.name];
  }
  const serials: string[] = [];
  let nextToken: string | undefined;
  do {
    const page = await call('ListCoreDevices', (o) => gg.send(new ListCoreDevicesCommand({ thingGroupArn: targetArn, maxResults: 100, nextToken }), o));
    for (const d of page.coreDevices ?? []) if (d.coreDeviceThingName) serials.push(d.coreDeviceThingName);
    nextToken = page.nextToken;
  } while (nextToken);
  if (serials.length === 0) throw ApplicationFailure.nonRetryable(`thing group ${target.name} has no Greengrass core devices`, greengrassErrorTypes.notFound);
  return serials;
}

/** Greengrass allows `^[a-zA-Z0-9-]{1,64}$`; a hash of what makes the deployment unique keeps retries to one. */
export const clientTokenFor = (deploymentId: string, stage: StageName, targetArn: string) =>
  createHash('sha256').update(`${deploymentId}\n${stage}\n${targetArn}`).digest('hex').slice(0, 64);

export type CreatedDeployment = { greengrassDeploymentId: string; iotJobId: string | null };

export async function createGreengrassDeployment(
  gg: GreengrassV2Client,
  input: { deploymentId: string; stage: StageName; targetArn: string; components: Components },
): Promise<CreatedDeployment> {
  const out = await call('CreateDeployment', (o) => gg.send(new CreateDeploymentCommand({
      targetArn: input.targetArn,
      deploymentName: `${input.deploymentId} ${input.stage.toLowerCase()}`.slice(0, 256),
      components: input.components,
      deploymentPolicies: { failureHandlingPolicy: 'ROLLBACK' },
      tags: { 'fleet-deployment-id': input.deploymentId, 'fleet-stage': input.stage },
      clientToken: clientTokenFor(input.deploymentId, input.stage, input.targetArn),
    }), o));
  if (!out.deploymentId) throw ApplicationFailure.retryable('Greengrass CreateDeployment answered without a deploymentId', greengrassErrorTypes.unavailable);
  return { greengrassDeploymentId: out.deploymentId, iotJobId: out.iotJobId ?? null };
}

export type ProgressInput = {
  devices: { serial: string; greengrassDeploymentId: string; greengrassStatus: string | null; reason: string | null }[];
  deployments: { greengrassDeploymentId: string; status: string }[];
  /** True: fail (benignly, for the retry policy to pace) until something differs from what the workflow knows. */
  waitForChange: boolean;
};
export type ProgressResult = { devices: DeviceUpdate[]; deployments: { greengrassDeploymentId: string; status: string }[] };

/** Each device's execution of its deployment (ListEffectiveDeployments) and each deployment's status (GetDeployment). */
export async function pollRolloutProgress(gg: GreengrassV2Client, input: ProgressInput): Promise<ProgressResult> {
  const deployments = await inBatches(input.deployments, 8, async (d) => {
    const out = await call('GetDeployment', (o) => gg.send(new GetDeploymentCommand({ deploymentId: d.greengrassDeploymentId }), o));
    return { greengrassDeploymentId: d.greengrassDeploymentId, status: out.deploymentStatus ?? d.status };
  });
  const devices = await inBatches(input.devices, 8, (d) => deviceExecution(gg, d.serial, d.greengrassDeploymentId));
  const changed =
    deployments.some((d, i) => d.status !== input.deployments[i].status) ||
    devices.some((d, i) => d.greengrassStatus !== input.devices[i].greengrassStatus || d.reason !== input.devices[i].reason);
  if (input.waitForChange && !changed) {
    throw ApplicationFailure.create({ message: 'no progress yet', type: 'NoProgressYet', category: ApplicationFailureCategory.BENIGN });
  }
  return { devices, deployments };
}

async function deviceExecution(gg: GreengrassV2Client, serial: string, greengrassDeploymentId: string): Promise<DeviceUpdate> {
  let nextToken: string | undefined;
  try {
    // Newest first: ours is on the first page unless many newer deployments followed it.
    for (let page = 0; page < 5; page++) {
      const out = await call('ListEffectiveDeployments', (o) => gg.send(new ListEffectiveDeploymentsCommand({ coreDeviceThingName: serial, maxResults: 100, nextToken }), o));
      const mine = out.effectiveDeployments?.find((e) => e.deploymentId === greengrassDeploymentId);
      if (mine) return { serial, greengrassDeploymentId, greengrassStatus: mine.coreDeviceExecutionStatus ?? null, reason: mine.reason || null };
      nextToken = out.nextToken;
      if (!nextToken) break;
    }
    return { serial, greengrassDeploymentId, greengrassStatus: null, reason: null };
  } catch (error) {
    if (error instanceof ApplicationFailure && isNotFound(error)) {
      return { serial, greengrassDeploymentId, greengrassStatus: 'NOT_FOUND', reason: `Greengrass does not know core device ${serial}` };
    }
    throw error;
  }
}

/** Stops devices that have not received the deployment yet; answers the deployment's status after. */
export async function cancelGreengrassDeployment(gg: GreengrassV2Client, greengrassDeploymentId: string): Promise<string> {
  try {
    await call('CancelDeployment', (o) => gg.send(new CancelDeploymentCommand({ deploymentId: greengrassDeploymentId }), o));
  } catch (error) {
    const conflict = error instanceof ApplicationFailure && (error.cause as AwsError | undefined)?.name === 'ConflictException';
    if (!conflict) throw error;
  }
  const out = await call('GetDeployment', (o) => gg.send(new GetDeploymentCommand({ deploymentId: greengrassDeploymentId }), o));
  return out.deploymentStatus ?? 'CANCELED';
}

export type CanaryHealth = { serial: string; problems: string[] };

/** A canary is healthy when Greengrass runs the components and the robot is online without a CRITICAL_FAULT. */
export async function checkCanaryHealth(
  gg: GreengrassV2Client,
  prisma: Prisma,
  input: { serials: string[]; components: Components },
): Promise<CanaryHealth[]> {
  const rows = await readCanaryDevices(prisma, input.serials);
  const bySerial = new Map(rows.map((r) => [r.serialNumber, r]));
  return inBatches(input.serials, 8, async (serial) => {
    const [core, installed] = await Promise.all([
      call('GetCoreDevice', (o) => gg.send(new GetCoreDeviceCommand({ coreDeviceThingName: serial }), o)),
      listInstalled(gg, serial),
    ]);
    const row = bySerial.get(serial);
    const problems = canaryProblems(
      {
        serial,
        coreStatus: core.status ?? null,
        installed,
        online: row ? row.online : null,
        criticalComponents: row?.components.map((c) => c.componentName) ?? [],
      },
      input.components,
    );
    return { serial, problems };
  });
}

async function listInstalled(gg: GreengrassV2Client, serial: string): Promise<SoftwareStatus['installedComponents']> {
  const list: SoftwareStatus['installedComponents'] = [];
  let nextToken: string | undefined;
  do {
    const out = await call('ListInstalledComponents', (o) => gg.send(new ListInstalledComponentsCommand({ coreDeviceThingName: serial, maxResults: 100, nextToken }), o));
    for (const c of out.installedComponents ?? []) {
      list.push({
        componentName: c.componentName ?? '',
        componentVersion: c.componentVersion ?? '',
        lifecycleState: c.lifecycleState ?? 'NEW',
        lifecycleStateDetails: c.lifecycleStateDetails ?? null,
        isRoot: c.isRoot ?? false,
        lastStatusChangeAt: isoFrom(c.lastStatusChangeTimestamp),
      });
    }
    nextToken = out.nextToken;
  } while (nextToken);
  return list;
}

// --- Software status -------------------------------------------------------------------------

/** One robot's software as Greengrass reports it now; `coreDevice` null when Greengrass does not know it. */
export async function readSoftwareStatus(gg: GreengrassV2Client, serial: string): Promise<SoftwareStatus> {
  const now = new Date().toISOString();
  let core: { status?: string; coreVersion?: string; platform?: string; architecture?: string; lastStatusUpdateTimestamp?: Date };
  try {
    core = await call('GetCoreDevice', (o) => gg.send(new GetCoreDeviceCommand({ coreDeviceThingName: serial }), o));
  } catch (error) {
    if (error instanceof ApplicationFailure && isNotFound(error)) {
      return { serial, coreDevice: null, installedComponents: [], effectiveDeployments: [], error: `not a Greengrass core device: ${error.message}`, updatedAt: now };
    }
    throw error;
  }
  const [installedComponents, effective] = await Promise.all([
    listInstalled(gg, serial),
    call('ListEffectiveDeployments', (o) => gg.send(new ListEffectiveDeploymentsCommand({ coreDeviceThingName: serial, maxResults: 20 }), o)),
  ]);
  return {
    serial,
    coreDevice: {
      status: core.status ?? null,
      coreVersion: core.coreVersion ?? null,
      platform: core.platform ?? null,
      architecture: core.architecture ?? null,
      lastStatusUpdateAt: isoFrom(core.lastStatusUpdateTimestamp),
    },
    installedComponents,
    effectiveDeployments: (effective.effectiveDeployments ?? []).map((e) => ({
      deploymentId: e.deploymentId ?? '',
      deploymentName: e.deploymentName ?? '',
      targetArn: e.targetArn ?? '',
      coreDeviceExecutionStatus: e.coreDeviceExecutionStatus ?? '',
      reason: e.reason || null,
      createdAt: isoFrom(e.creationTimestamp),
      modifiedAt: isoFrom(e.modifiedTimestamp),
    })),
    error: null,
    updatedAt: now,
  };
}

/** One batch of the software-status poller: read each robot from Greengrass, write the projection. */
export async function pollSoftwareStatus(gg: GreengrassV2Client, prisma: Prisma, serials: string[]): Promise<number> {
  const statuses = await inBatches(serials, 4, (serial) => readSoftwareStatus(gg, serial));
  await writeSoftwareStatus(prisma, statuses);
  return statuses.length;
}

/** The rollout and software-status activities, bound to the Greengrass client and the database. */
export function createGreengrassActivities(deps: { greengrass: GreengrassV2Client; prisma: Prisma }) {
  const gg = deps.greengrass;
  return {
    resolveTargetDevices: (targetArn: string) => resolveTargetDevices(gg, targetArn),
    createGreengrassDeployment: (input: Parameters<typeof createGreengrassDeployment>[1]) => createGreengrassDeployment(gg, input),
    pollRolloutProgress: (input: ProgressInput) => pollRolloutProgress(gg, input),
    cancelGreengrassDeployment: (greengrassDeploymentId: string) => cancelGreengrassDeployment(gg, greengrassDeploymentId),
    checkCanaryHealth: (input: Parameters<typeof checkCanaryHealth>[2]) => checkCanaryHealth(gg, deps.prisma, input),
    recordDeployment: (input: Parameters<typeof recordDeployment>[1]) => recordDeployment(deps.prisma, input),
    pollSoftwareStatus: (serials: string[]) => pollSoftwareStatus(gg, deps.prisma, serials),
    listRobotSerials: (input: Parameters<typeof listRobotSerials>[1]) => listRobotSerials(deps.prisma, input),
    countRobots: () => countRobots(deps.prisma),
  };
}
