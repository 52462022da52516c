import { z } from 'zod';
import { hardwareStatusCodes, networkTypes } from './device-values';

/**
 * The seed's `coco.device.v1.Device` in proto3 JSON: camelCase fields, enums by value name,
 * timestamps as RFC 3339 strings. Every API answer about a device has this shape.
 */

const timestamp = z.string().describe('RFC 3339 timestamp');

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

export { deviceName, emptyDriveuStatus, emptyGreengrassStatus, hardwareStatusCodes, isFault, networkTypes, toHardwareStatusCode, toNetworkType } from './device-values';
