import { z } from 'zod';
import type { Device } from './device';

/**
 * A robot's software as Greengrass reports it (GetCoreDevice, ListInstalledComponents,
 * ListEffectiveDeployments): what `GET /v1/devices/{serial}/software` answers and the
 * `device_software` projection holds. Greengrass's own words for states are kept as they are.
 */

const timestamp = z.string().describe('RFC 3339 timestamp');

export const installedComponentSchema = z.object({
  componentName: z.string(),
  componentVersion: z.string(),
  lifecycleState: z.string().describe('NEW, INSTALLED, STARTING, RUNNING, STOPPING, ERRORED, BROKEN, FINISHED'),
  lifecycleStateDetails: z.string().nullable(),
  isRoot: z.boolean(),
  lastStatusChangeAt: timestamp.nullable(),
});

export const effectiveDeploymentSchema = z.object({
  deploymentId: z.string(),
  deploymentName: z.string(),
  targetArn: z.string(),
  coreDeviceExecutionStatus: z.string().describe('QUEUED, IN_PROGRESS, SUCCEEDED, COMPLETED, FAILED, TIMED_OUT, CANCELED, REJECTED'),
  reason: z.string().nullable(),
  createdAt: timestamp.nullable(),
  modifiedAt: timestamp.nullable(),
});

export const softwareStatusSchema = z.object({
  serial: z.string(),
  coreDevice: z
    .object({
      status: z.string().nullable().describe('HEALTHY or UNHEALTHY, as the core device last reported'),
      coreVersion: z.string().nullable(),
      platform: z.string().nullable(),
      architecture: z.string().nullable(),
      lastStatusUpdateAt: timestamp.nullable(),
    })
    .nullable()
    .describe('null when Greengrass does not know the robot as a core device'),
  installedComponents: z.array(installedComponentSchema),
  effectiveDeployments: z.array(effectiveDeploymentSchema),
  error: z.string().nullable().describe('why the core device could not be read'),
  updatedAt: timestamp.nullable().describe('when this was read from Greengrass; null: not polled yet'),
});
export type SoftwareStatus = z.infer<typeof softwareStatusSchema>;

const lifecycleStates = ['RUNNING', 'ERRORED', 'BROKEN', 'INSTALLED', 'STARTING', 'STOPPING'];

/** The seed's GreengrassStatus (proto3 JSON enum names); states the seed enum lacks are UNSPECIFIED. */
export function toGreengrassStatus(s: Pick<SoftwareStatus, 'coreDevice' | 'installedComponents' | 'updatedAt'>): Device['greengrassStatus'] {
  const core = s.coreDevice?.status;
  return {
    coreStatus: core === 'HEALTHY' || core === 'UNHEALTHY' ? `GREENGRASS_CORE_STATUS_${core}` : 'GREENGRASS_CORE_STATUS_UNSPECIFIED',
    installedComponents: s.installedComponents.map((c) => ({
      componentName: c.componentName,
      componentVersion: c.componentVersion,
      lifecycleState: lifecycleStates.includes(c.lifecycleState)
        ? `COMPONENT_LIFECYCLE_STATE_${c.lifecycleState}`
        : 'COMPONENT_LIFECYCLE_STATE_UNSPECIFIED',
    })),
    updatedAt: s.updatedAt,
  };
}

export { sweepIntervalMs } from './software-sweep';
