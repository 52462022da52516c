import type { Device as DeviceRow, DeviceBattery, DeviceComponent, DeviceSoftware } from '../generated/prisma/client';
import {
  deviceName,
  driveuStatusSchema,
  emptyGreengrassStatus,
  toHardwareStatusCode,
  toNetworkType,
  type Device,
} from './device';
import { toGreengrassStatus, type SoftwareStatus } from './software';

/** What the ingest keeps for its own decisions (domain/heartbeat-intake.ts), not part of the Device. */
type IntakeColumns = 'clockOffsetMs' | 'newestReceivedAt' | 'clockBehindReceivedAt' | 'clockBehindTimeMs' | 'forwardedFingerprint' | 'forwardedAt' | 'newestParts' | 'updatedFields';

/** A `devices` row with its batteries and components, as the projection holds it. */
export type DeviceProjection = Omit<DeviceRow, IntakeColumns> & { batteries: DeviceBattery[]; components: DeviceComponent[]; software?: DeviceSoftware | null };

const iso = (at: Date | null) => (at ? at.toISOString() : null);

export function deviceFromProjection(row: DeviceProjection): Device {
  return {
    name: deviceName(row.serialNumber),
    location:
      row.lat === null || row.lng === null
        ? null
        : {
            latitude: row.lat,
            longitude: row.lng,
            heading: row.heading ?? 0,
            horizontalAccuracy: row.horizontalAccuracy ?? 0,
            altitude: row.altitude ?? 0,
            speedMph: row.speedMph ?? 0,
            updatedAt: iso(row.locationUpdatedAt),
          },
    batteries: [...row.batteries]
      .sort((a, b) => a.batteryIndex - b.batteryIndex)
      .map((b) => ({
        batteryIndex: b.batteryIndex,
        chargePercent: b.chargePercent ?? 0,
        isCharging: b.isCharging ?? false,
        voltage: b.voltage ?? 0,
        current: b.current ?? 0,
        temperature: b.temperature ?? 0,
        estimatedRangeMeters: 0,
        updatedAt: iso(b.updatedAt),
      })),
    connectivity: {
      online: row.online,
      networkType: toNetworkType(row.networkType),
      signalStrength: row.signalStrength ?? 0,
      updatedAt: iso(row.connectivityUpdatedAt),
    },
    lidState: { isOpen: row.lidIsOpen, updatedAt: iso(row.lidUpdatedAt) },
    componentStatuses: [...row.components]
      .sort((a, b) => a.componentName.localeCompare(b.componentName))
      .map((c) => ({
        componentName: c.componentName,
        statusCode: toHardwareStatusCode(c.statusCode),
        message: c.message ?? '',
        updatedAt: iso(c.updatedAt),
      })),
    driveuStatus: {
      streamerStatus: toStreamerStatus(row.driveuStreamerStatus),
      pilotConnected: row.pilotConnected,
      sessionId: row.driveuSessionId ?? '',
      updatedAt: iso(row.driveuUpdatedAt),
    },
    greengrassStatus: row.software ? greengrassFromProjection(row.software) : emptyGreengrassStatus,
    createdAt: row.createdAt.toISOString(),
    updatedAt: row.updatedAt.toISOString(),
  };
}

/** The software-status poller's row (workflows/software-status.ts). */
function greengrassFromProjection(row: DeviceSoftware): Device['greengrassStatus'] {
  return toGreengrassStatus({
    coreDevice: row.coreStatus === null ? null : { status: row.coreStatus, coreVersion: null, platform: null, architecture: null, lastStatusUpdateAt: null },
    installedComponents: row.installedComponents as SoftwareStatus['installedComponents'],
    updatedAt: row.polledAt.toISOString(),
  });
}

type StreamerStatus = Device['driveuStatus']['streamerStatus'];

/** Accepts the stored value with or without the enum prefix. */
function toStreamerStatus(stored: string | null): StreamerStatus {
  const options = driveuStatusSchema.shape.streamerStatus.options as readonly string[];
  const value = stored ?? 'UNSPECIFIED';
  const prefixed = value.startsWith('DRIVEU_STREAMER_STATUS_') ? value : `DRIVEU_STREAMER_STATUS_${value}`;
  return options.includes(prefixed) ? (prefixed as StreamerStatus) : 'DRIVEU_STREAMER_STATUS_UNSPECIFIED';
}

/**
 * The workflow's live device, with the projection's telemetry when the projection heard a newer
 * heartbeat: telemetry reaches the projection first, while online and health are the workflow's
 * decisions. DriveU and Greengrass status never pass through the workflow, so they always come from the row.
 */
export function mergeLiveWithProjection(live: Device, liveHeartbeatAt: number | null, row: DeviceProjection | null): Device {
  if (row === null) return live;
  const projected = deviceFromProjection(row);
  const merged: Device = { ...live, driveuStatus: projected.driveuStatus, greengrassStatus: projected.greengrassStatus, createdAt: projected.createdAt };
  const rowHeartbeatAt = row.lastHeartbeatAt?.getTime() ?? null;
  if (rowHeartbeatAt === null || (liveHeartbeatAt !== null && rowHeartbeatAt <= liveHeartbeatAt)) return merged;
  return {
    ...merged,
    location: projected.location,
    batteries: projected.batteries,
    connectivity: {
      ...live.connectivity,
      networkType: projected.connectivity.networkType,
      signalStrength: projected.connectivity.signalStrength,
    },
    lidState: projected.lidState,
    updatedAt: projected.updatedAt > live.updatedAt ? projected.updatedAt : live.updatedAt,
  };
}
