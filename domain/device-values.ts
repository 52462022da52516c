import type { ComponentCode } from './heartbeat';
import type { Device } from './device';

/**
 * The Device's enum values and the pure helpers around them, apart from its zod schema
 * (device.ts) so that workflows can use them: a workflow bundle that imports zod builds every
 * schema again for each workflow it starts (docs/performance.md, "Cache sizes").
 */

export const networkTypes = ['NETWORK_TYPE_UNSPECIFIED', 'NETWORK_TYPE_WIFI', 'NETWORK_TYPE_CELLULAR', 'NETWORK_TYPE_ETHERNET'] as const;
export const hardwareStatusCodes = [
  'HARDWARE_STATUS_CODE_UNSPECIFIED',
  'HARDWARE_STATUS_CODE_OK',
  'HARDWARE_STATUS_CODE_READY',
  'HARDWARE_STATUS_CODE_TIMEOUT',
  'HARDWARE_STATUS_CODE_NON_CRITICAL_FAULT',
  'HARDWARE_STATUS_CODE_CRITICAL_FAULT',
] as const;

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
