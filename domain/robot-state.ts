import type { ComponentCode, Heartbeat } from './heartbeat';
import type { EventDraft } from './events';
import { computeFleetStatus, type FleetStatus } from './fleet-status';
import {
  deviceName,
  emptyDriveuStatus,
  emptyGreengrassStatus,
  isFault,
  toHardwareStatusCode,
  toNetworkType,
} from './device-values';
import type { Device } from './device';
import { SILENCE_BACKSTOP_EXTRA_MS } from './silence';
import { changedBackAt, keepRecent } from './sightings';

/**
 * The robot workflow's state: the device shadow plus what it has decided (online, health).
 * Plain data, so it is carried through continue-as-new as is.
 */
export type RobotState = {
  serial: string;
  online: boolean;
  /** Server clock (ms) of the last change of `online`. */
  onlineChangedAt: number | null;
  /** Server clock (ms) when the robot was last heard from, as far as this workflow knows. */
  lastSeenAt: number | null;
  /** Robot clock (ms) of the newest heartbeat applied; older ones are ignored. */
  lastHeartbeatAt: number | null;
  latest: Heartbeat | null;
  /** Component code and the robot time (ms) it took that code. */
  components: Record<string, { code: ComponentCode; since: number }>;
  fleetStatus: FleetStatus;
  createdAt: number;
};

export function initialRobotState(serial: string, now: number): RobotState {
  return {
    serial,
    online: false,
    onlineChangedAt: null,
    lastSeenAt: null,
    lastHeartbeatAt: null,
    latest: null,
    components: {},
    fleetStatus: 'OFFLINE',
    createdAt: now,
  };
}

export type Transition = { state: RobotState; events: EventDraft[] };

const iso = (ms: number) => new Date(ms).toISOString();

/** Applies one heartbeat. Duplicates and heartbeats older than the newest applied change nothing. */
export function applyHeartbeat(state: RobotState, hb: Heartbeat): Transition {
  if (state.lastHeartbeatAt !== null && hb.timestamp <= state.lastHeartbeatAt) return { state, events: [] };
  const events: EventDraft[] = [];
  const next: RobotState = {
    ...state,
    lastHeartbeatAt: hb.timestamp,
    lastSeenAt: Math.max(state.lastSeenAt ?? 0, hb.receivedAt),
    latest: hb,
    components: { ...state.components },
  };
  if (!state.online) {
    next.online = true;
    next.onlineChangedAt = hb.receivedAt;
    events.push(connectivityEvent(state.serial, true, hb.receivedAt));
  }
  for (const [name, code] of Object.entries(hb.components)) {
    const previous = state.components[name]?.code;
    if (previous === code) continue;
    next.components[name] = { code, since: hb.timestamp };
    events.push(...healthChange(state.serial, name, previous, code, hb.timestamp));
  }
  next.fleetStatus = computeFleetStatus({ online: next.online }).status;
  return { state: next, events };
}

function healthChange(serial: string, name: string, previous: ComponentCode | undefined, code: ComponentCode, at: number): EventDraft[] {
  if (isFault(code)) return [healthEvent('Device.HealthDegraded', serial, name, code, at)];
  if (isFault(previous)) return [healthEvent('Device.HealthRestored', serial, name, code, at)];
  return [];
}

/** Component codes of recent heartbeats by robot time, oldest first: where a late heartbeat is placed. */
export type ComponentSighting = { at: number; codes: Record<string, ComponentCode> };
const COMPONENT_SIGHTINGS_KEPT = 20;

/** Remembers a batch's component codes, as `rememberLidSightings` does the lid's. */
export function rememberComponents(seen: ComponentSighting[], heartbeats: Heartbeat[]): ComponentSighting[] {
  return keepRecent(seen, heartbeats.map((hb) => ({ at: hb.timestamp, codes: hb.components })), COMPONENT_SIGHTINGS_KEPT);
}

/**
 * A heartbeat older than the newest applied (which `applyHeartbeat` ignores): a component code in it
 * that differs from the code decided since before it is a change newer heartbeats overtook (as the
 * lid's, domain/lid.ts), so the component changed at its time and changed back by the first
 * sighting after it with the current code (`changedBackAt`). Both changes raise their health
 * events; the current code then counts from that sighting, so the same late heartbeat again
 * changes nothing.
 */
export function placeLateHeartbeat(state: RobotState, hb: Heartbeat, seen: ComponentSighting[]): Transition {
  const events: EventDraft[] = [];
  let components = state.components;
  for (const [name, code] of Object.entries(hb.components)) {
    const current = components[name];
    if (!current || code === current.code || hb.timestamp <= current.since) continue;
    const back = changedBackAt(seen, hb.timestamp, (s) => s.codes[name] === current.code);
    if (back === null) continue;
    components = { ...components, [name]: { code: current.code, since: back } };
    events.push(...healthChange(state.serial, name, current.code, code, hb.timestamp), ...healthChange(state.serial, name, code, current.code, back));
  }
  return components === state.components ? { state, events } : { state: { ...state, components }, events };
}

/**
 * The workflow's backstop timer (server ms) while online; null when already offline or never seen.
 * The silence sweeper's signal normally comes first (domain/silence.ts).
 */
export function silenceBackstop(state: RobotState, offlineAfterMs: number): number | null {
  if (!state.online || state.lastSeenAt === null) return null;
  return state.lastSeenAt + offlineAfterMs + SILENCE_BACKSTOP_EXTRA_MS;
}

/** Called when the deadline passed; `lastSeenAt` is the freshest sighting the caller could find. */
export function checkSilence(state: RobotState, lastSeenAt: number | null, now: number, offlineAfterMs: number): Transition {
  const seen = Math.max(state.lastSeenAt ?? 0, lastSeenAt ?? 0);
  if (!state.online) return { state, events: [] };
  if (now < seen + offlineAfterMs) return { state: { ...state, lastSeenAt: seen }, events: [] };
  const next: RobotState = { ...state, lastSeenAt: seen, online: false, onlineChangedAt: now };
  next.fleetStatus = computeFleetStatus({ online: false }).status;
  return { state: next, events: [connectivityEvent(state.serial, false, now)] };
}

function connectivityEvent(serial: string, online: boolean, at: number): EventDraft {
  return {
    type: 'Device.ConnectivityChanged',
    serial,
    occurredAt: iso(at),
    data: { deviceName: deviceName(serial), online, previousOnline: !online, changedAt: iso(at) },
  };
}

function healthEvent(
  type: 'Device.HealthDegraded' | 'Device.HealthRestored',
  serial: string,
  componentName: string,
  code: ComponentCode,
  at: number,
): EventDraft {
  return {
    type,
    serial,
    occurredAt: iso(at),
    data: {
      deviceName: deviceName(serial),
      componentName,
      statusCode: toHardwareStatusCode(code),
      message: `${componentName} reported ${code}`,
      [type === 'Device.HealthDegraded' ? 'detectedAt' : 'restoredAt']: iso(at),
    },
  };
}

/** The workflow's live view as a seed `Device` (what `?fresh=true` answers). */
export function robotStateToDevice(state: RobotState): Device {
  const hb = state.latest;
  const at = hb ? iso(hb.timestamp) : null;
  return {
    name: deviceName(state.serial),
    location: hb?.location
      ? {
          latitude: hb.location.latitude,
          longitude: hb.location.longitude,
          heading: hb.location.heading ?? 0,
          horizontalAccuracy: hb.location.horizontalAccuracy ?? 0,
          altitude: hb.location.altitude ?? 0,
          speedMph: hb.location.speedMph ?? 0,
          updatedAt: at,
        }
      : null,
    batteries: (hb?.batteries ?? []).map((b) => ({
      batteryIndex: b.batteryIndex,
      chargePercent: b.chargePercent,
      isCharging: b.isCharging ?? false,
      voltage: b.voltage ?? 0,
      current: b.current ?? 0,
      temperature: b.temperature ?? 0,
      estimatedRangeMeters: 0,
      updatedAt: at,
    })),
    connectivity: {
      online: state.online,
      networkType: toNetworkType(hb?.network?.type),
      signalStrength: hb?.network?.signalStrength ?? 0,
      updatedAt: state.onlineChangedAt === null ? null : iso(state.onlineChangedAt),
    },
    lidState: { isOpen: hb?.lidOpen ?? false, updatedAt: at },
    componentStatuses: Object.entries(state.components)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([componentName, c]) => ({
        componentName,
        statusCode: toHardwareStatusCode(c.code),
        message: '',
        updatedAt: iso(c.since),
      })),
    driveuStatus: emptyDriveuStatus,
    greengrassStatus: emptyGreengrassStatus,
    createdAt: iso(state.createdAt),
    updatedAt: at ?? iso(state.createdAt),
  };
}
