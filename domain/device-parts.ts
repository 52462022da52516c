import type { Heartbeat } from './heartbeat';

/**
 * The parts of a Device a heartbeat reports, as the projection keeps them from the robot's newest
 * heartbeats: a heartbeat without a part leaves it as it was, batteries and components are kept
 * one by one (as the projection's upserts do). `updatedFields` (seed StreamDeviceUpdates,
 * Device.HeartbeatReceived) are the Device fields whose value a heartbeat changed.
 */
export const updatableFields = ['location', 'batteries', 'connectivity', 'lidState', 'componentStatuses'] as const;
export type UpdatedField = (typeof updatableFields)[number];

type Location = [lat: number, lng: number, heading: number | null, accuracy: number | null, altitude: number | null, speedMph: number | null];
type Battery = [charge: number, charging: boolean | null, voltage: number | null, current: number | null, temperature: number | null];

export type DeviceParts = {
  location: Location | null;
  connectivity: [type: string, signalStrength: number | null] | null;
  lidOpen: boolean | null;
  batteries: Record<string, Battery>;
  components: Record<string, string>;
};

export const noParts: DeviceParts = { location: null, connectivity: null, lidOpen: null, batteries: {}, components: {} };

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/** The parts after `hb`, and the fields it changed (all it reports, for a robot's first heartbeat). */
export function mergeParts(before: DeviceParts, hb: Heartbeat): { parts: DeviceParts; changed: UpdatedField[] } {
  const changed = new Set<UpdatedField>();
  const parts: DeviceParts = { ...before, batteries: { ...before.batteries }, components: { ...before.components } };
  if (hb.location) {
    const l = hb.location;
    parts.location = [l.latitude, l.longitude, l.heading ?? null, l.horizontalAccuracy ?? null, l.altitude ?? null, l.speedMph ?? null];
    if (!same(parts.location, before.location)) changed.add('location');
  }
  if (hb.network) {
    parts.connectivity = [hb.network.type, hb.network.signalStrength ?? null];
    if (!same(parts.connectivity, before.connectivity)) changed.add('connectivity');
  }
  if (hb.lidOpen !== undefined) {
    parts.lidOpen = hb.lidOpen;
    if (hb.lidOpen !== before.lidOpen) changed.add('lidState');
  }
  for (const b of hb.batteries) {
    const battery: Battery = [b.chargePercent, b.isCharging ?? null, b.voltage ?? null, b.current ?? null, b.temperature ?? null];
    if (!same(battery, before.batteries[b.batteryIndex])) changed.add('batteries');
    parts.batteries[b.batteryIndex] = battery;
  }
  for (const [name, code] of Object.entries(hb.components)) {
    if (before.components[name] !== code) changed.add('componentStatuses');
    parts.components[name] = code;
  }
  return { parts, changed: updatableFields.filter((f) => changed.has(f)) };
}

/** The fields whose value differs between two states of a robot's parts: what changed for whoever saw `before`. */
export function changedFields(before: DeviceParts, after: DeviceParts): UpdatedField[] {
  const changed = new Set<UpdatedField>();
  if (!same(before.location, after.location)) changed.add('location');
  if (!same(before.connectivity, after.connectivity)) changed.add('connectivity');
  if (before.lidOpen !== after.lidOpen) changed.add('lidState');
  if (!sameEntries(before.batteries, after.batteries)) changed.add('batteries');
  if (!sameEntries(before.components, after.components)) changed.add('componentStatuses');
  return updatableFields.filter((f) => changed.has(f));
}

// Key by key: the same parts read back from jsonb may list their keys in another order.
function sameEntries(a: Record<string, unknown>, b: Record<string, unknown>): boolean {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  for (const key of keys) if (!same(a[key] ?? null, b[key] ?? null)) return false;
  return true;
}
