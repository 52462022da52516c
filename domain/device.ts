import { z } from 'zod';
import type { ComponentCode } from './heartbeat';

/**
 * The seed's `coco.device.v1.Device` in proto3 JSON: camelCase fields, enums by value name,
 * timestamps as RFC 3339 strings. Every API answer about a device has this shape.
 */

const timestamp = z.string().describe('RFC 3339 timestamp');

export const networkTypes = ['NETWORK_TYPE_UNSPECIFIED', 'NETWORK_TYPE_WIFI', 'NETWORK_TYPE_CELLULAR', 'NETWORK_TYPE_ETHERNET'] as const;
export const hardwareStatusCodes = [
  'HARDWARE_STATUS_CODE_UNSPECIFIED',
  'HARDWARE_STATUS_CODE_OK',
  'HARDWARE_STATUS_CODE_READY',
  'HARDWARE_STATUS_CODE_TIMEOUT',
  'HARDWARE_STATUS_CODE_NON_CRITICAL_FAULT',
  'HARDWARE_STATUS_CODE_CRITICAL_FAULT',
] as const;

export const locationSchema = z.object({
  latitude: z.number(),
  longitude: z.number(),
  heading: z.number(),
  horizontalAccuracy: z.number(),
  altitude: z.number(),
  speedMph: z.number(),
  updatedAt: timestamp.nullable(),
});

export const batterySchema = z.object({
  batteryIndex: z.number().int(),
  chargePercent: z.number().int(),
  isCharging: z.boolean(),
  voltage: z.number(),
  current: z.number(),
  temperature: z.number(),
  estimatedRangeMeters: z.number().int(),
  updatedAt: timestamp.nullable(),
});

export const connectivitySchema = z.object({
  online: z.boolean(),
  networkType: z.enum(networkTypes),
  signalStrength: z.number().int(),
  updatedAt: timestamp.nullable(),
});

export const lidStateSchema = z.object({ isOpen: z.boolean(), updatedAt: timestamp.nullable() });

export const componentStatusSchema = z.object({
  componentName: z.string(),
  statusCode: z.enum(hardwareStatusCodes),
  message: z.string(),
  updatedAt: timestamp.nullable(),
});

export const driveuStatusSchema = z.object({
  streamerStatus: z.enum([
    'DRIVEU_STREAMER_STATUS_UNSPECIFIED',
    'DRIVEU_STREAMER_STATUS_OFFLINE',
    'DRIVEU_STREAMER_STATUS_ONLINE',
    'DRIVEU_STREAMER_STATUS_CONNECTED_TO_NODE',
    'DRIVEU_STREAMER_STATUS_STREAMING',
  ]),
  pilotConnected: z.boolean(),
  sessionId: z.string(),
  updatedAt: timestamp.nullable(),
});

export const greengrassStatusSchema = z.object({
  coreStatus: z.enum(['GREENGRASS_CORE_STATUS_UNSPECIFIED', 'GREENGRASS_CORE_STATUS_HEALTHY', 'GREENGRASS_CORE_STATUS_UNHEALTHY']),
  installedComponents: z.array(
    z.object({ componentName: z.string(), componentVersion: z.string(), lifecycleState: z.string() }),
  ),
  updatedAt: timestamp.nullable(),
});

export const deviceSchema = z.object({
  name: z.string().describe('devices/{serial}'),
  location: locationSchema.nullable(),
  batteries: z.array(batterySchema),
  connectivity: connectivitySchema,
  lidState: lidStateSchema,
  componentStatuses: z.array(componentStatusSchema),
  driveuStatus: driveuStatusSchema,
  greengrassStatus: greengrassStatusSchema,
  createdAt: timestamp,
  updatedAt: timestamp,
});
export type Device = z.infer<typeof deviceSchema>;

export const deviceName = (serial: string) => `devices/${serial}`;

export function toHardwareStatusCode(code: string | null | undefined): Device['componentStatuses'][number]['statusCode'] {
  const value = `HARDWARE_STATUS_CODE_${code ?? 'UNSPECIFIED'}`;
  return (hardwareStatusCodes as readonly string[]).includes(value)
    ? (value as Device['componentStatuses'][number]['statusCode'])
    : 'HARDWARE_STATUS_CODE_UNSPECIFIED';
}

export function toNetworkType(type: string | null | undefined): Device['connectivity']['networkType'] {
  const value = `NETWORK_TYPE_${type ?? 'UNSPECIFIED'}`;
  return (networkTypes as readonly string[]).includes(value) ? (value as Device['connectivity']['networkType']) : 'NETWORK_TYPE_UNSPECIFIED';
}

/** TIMEOUT counts as a fault: a component that stopped answering is not healthy. */
export function isFault(code: ComponentCode | undefined): boolean {
  return code === 'TIMEOUT' || code === 'NON_CRITICAL_FAULT' || code === 'CRITICAL_FAULT';
}

export const emptyDriveuStatus: Device['driveuStatus'] = {
  streamerStatus: 'DRIVEU_STREAMER_STATUS_UNSPECIFIED',
  pilotConnected: false,
  sessionId: '',
  updatedAt: null,
};

export const emptyGreengrassStatus: Device['greengrassStatus'] = {
  coreStatus: 'GREENGRASS_CORE_STATUS_UNSPECIFIED',
  installedComponents: [],
  updatedAt: null,
};
