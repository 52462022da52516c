import { deviceSchema, type Device } from '../../domain/device';
import { deviceFromProjection, mergeLiveWithProjection, type DeviceProjection } from '../../domain/device-projection';

const at = (iso: string) => new Date(iso);

function row(lastHeartbeatAt: string | null): DeviceProjection {
  return {
    serialNumber: 'R-1',
    lat: 1.5,
    lng: 2.5,
    heading: null,
    horizontalAccuracy: null,
    altitude: null,
    speedMph: null,
    locationUpdatedAt: at('2026-01-01T10:00:05.000Z'),
    online: false,
    connectivityUpdatedAt: null,
    networkType: 'WIFI',
    signalStrength: -60,
    driveuStreamerStatus: 'STREAMING',
    pilotConnected: true,
    driveuSessionId: 'session-1',
    driveuUpdatedAt: at('2026-01-01T09:00:00.000Z'),
    lidIsOpen: true,
    lidUpdatedAt: at('2026-01-01T10:00:05.000Z'),
    lastHeartbeatAt: lastHeartbeatAt === null ? null : at(lastHeartbeatAt),
    lastSeenAt: null,
    batteryPercent: 42,
    createdAt: at('2026-01-01T08:00:00.000Z'),
    updatedAt: at('2026-01-01T10:00:05.000Z'),
    batteries: [{ id: 1, serialNumber: 'R-1', batteryIndex: 0, chargePercent: 42, voltage: null, current: null, temperature: null, isCharging: null, updatedAt: null }],
    components: [],
  };
}

const live: Device = {
  name: 'devices/R-1',
  location: null,
  batteries: [],
  connectivity: { online: true, networkType: 'NETWORK_TYPE_CELLULAR', signalStrength: -90, updatedAt: '2026-01-01T09:59:00.000Z' },
  lidState: { isOpen: false, updatedAt: '2026-01-01T10:00:00.000Z' },
  componentStatuses: [
    { componentName: 'GPS', statusCode: 'HARDWARE_STATUS_CODE_CRITICAL_FAULT', message: '', updatedAt: '2026-01-01T10:00:00.000Z' },
  ],
  driveuStatus: { streamerStatus: 'DRIVEU_STREAMER_STATUS_UNSPECIFIED', pilotConnected: false, sessionId: '', updatedAt: null },
  greengrassStatus: { coreStatus: 'GREENGRASS_CORE_STATUS_UNSPECIFIED', installedComponents: [], updatedAt: null },
  createdAt: '2026-01-01T09:00:00.000Z',
  updatedAt: '2026-01-01T10:00:00.000Z',
};
const liveHeartbeatAt = Date.parse('2026-01-01T10:00:00.000Z');

test('a projection row maps to a valid Device, enums by value name', () => {
  const device = deviceFromProjection(row(null));
  expect(deviceSchema.strict().parse(device)).toEqual(device);
  expect(device.connectivity.networkType).toBe('NETWORK_TYPE_WIFI');
  expect(device.driveuStatus.streamerStatus).toBe('DRIVEU_STREAMER_STATUS_STREAMING');
  expect(device.location).toMatchObject({ latitude: 1.5, longitude: 2.5, heading: 0 });
});

test('a newer heartbeat in the projection brings its telemetry; online and health stay the workflow’s', () => {
  const merged = mergeLiveWithProjection(live, liveHeartbeatAt, row('2026-01-01T10:00:05.000Z'));
  expect(merged.location).toMatchObject({ latitude: 1.5, longitude: 2.5 });
  expect(merged.batteries.map((b) => b.chargePercent)).toEqual([42]);
  expect(merged.connectivity).toEqual({ ...live.connectivity, networkType: 'NETWORK_TYPE_WIFI', signalStrength: -60 });
  expect(merged.lidState.isOpen).toBe(true);
  expect(merged.componentStatuses).toEqual(live.componentStatuses);
  expect(merged.updatedAt).toBe('2026-01-01T10:00:05.000Z');
});

test('an older or equal projection heartbeat leaves the live telemetry', () => {
  for (const heartbeat of ['2026-01-01T09:59:59.000Z', '2026-01-01T10:00:00.000Z', null]) {
    const merged = mergeLiveWithProjection(live, liveHeartbeatAt, row(heartbeat));
    expect(merged.location).toBeNull();
    expect(merged.lidState).toEqual(live.lidState);
    expect(merged.connectivity).toEqual(live.connectivity);
    expect(merged.driveuStatus.sessionId).toBe('session-1');
  }
  expect(mergeLiveWithProjection(live, liveHeartbeatAt, null)).toBe(live);
});
