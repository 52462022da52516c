import { Prisma as Sql } from '../generated/prisma/client';
import type { Prisma } from '../infra/prisma';
import type { Heartbeat } from '../domain/heartbeat';
import type { DomainEvent } from '../domain/events';
import type { SilentRobot } from '../domain/silence';
import { refreshFleetRow } from '../activities/fleet';

/**
 * The device projection (seed 001 `devices`, `device_batteries`, `device_components`).
 * The ingest worker writes telemetry here in batches; the robot workflow writes its decisions.
 * Every write keeps the newest state: an older heartbeat never overwrites a newer one.
 */

/** Keeps the newest heartbeat per robot: one multi-row upsert cannot touch a row twice. */
export function newestPerRobot(heartbeats: Heartbeat[]): Heartbeat[] {
  const newest = new Map<string, Heartbeat>();
  for (const hb of heartbeats) {
    const current = newest.get(hb.serial);
    if (!current || hb.timestamp > current.timestamp) newest.set(hb.serial, hb);
  }
  return [...newest.values()];
}

export async function writeHeartbeats(prisma: Prisma, heartbeats: Heartbeat[]): Promise<void> {
  const rows = newestPerRobot(heartbeats);
  if (rows.length === 0) return;
  await prisma.$transaction([
    // battery_percent: the lowest of the heartbeat's batteries and of the stored ones it does not
    // mention (`mentioned` is a bit per battery index), i.e. the lowest of device_batteries once this
    // transaction is done; a heartbeat without batteries keeps the stored value.
    prisma.$executeRaw`
      INSERT INTO devices AS d (serial_number, lat, lng, heading, horizontal_accuracy, altitude, speed_mph,
        location_updated_at, network_type, signal_strength, lid_is_open, lid_updated_at, last_heartbeat_at, last_seen_at,
        battery_percent)
      SELECT s, lat, lng, heading, acc, alt, speed, CASE WHEN lat IS NULL THEN NULL ELSE ${fromMs('t')} END, net, sig,
        COALESCE(lid, false), CASE WHEN lid IS NULL THEN NULL ELSE ${fromMs('t')} END, ${fromMs('t')}, ${fromMs('seen')},
        CASE WHEN charge IS NOT NULL THEN LEAST(charge, (SELECT min(b.charge_percent) FROM device_batteries b
          WHERE b.serial_number = u.s AND (mentioned >> b.battery_index) & 1 = 0)) END
      FROM unnest(${rows.map((h) => h.serial)}::text[], ${rows.map((h) => h.location?.latitude ?? null)}::float8[],
        ${rows.map((h) => h.location?.longitude ?? null)}::float8[], ${rows.map((h) => h.location?.heading ?? null)}::float8[],
        ${rows.map((h) => h.location?.horizontalAccuracy ?? null)}::float8[], ${rows.map((h) => h.location?.altitude ?? null)}::float8[],
        ${rows.map((h) => h.location?.speedMph ?? null)}::float8[], ${rows.map((h) => h.network?.type ?? null)}::text[],
        ${rows.map((h) => h.network?.signalStrength ?? null)}::int[], ${rows.map((h) => h.lidOpen ?? null)}::bool[],
        ${rows.map((h) => h.timestamp)}::bigint[], ${rows.map((h) => h.receivedAt)}::bigint[],
        ${rows.map(lowestCharge)}::int[], ${rows.map(batteryIndexBits)}::int[])
        AS u(s, lat, lng, heading, acc, alt, speed, net, sig, lid, t, seen, charge, mentioned)
      ON CONFLICT (serial_number) DO UPDATE SET
        lat = COALESCE(EXCLUDED.lat, d.lat), lng = COALESCE(EXCLUDED.lng, d.lng),
        heading = COALESCE(EXCLUDED.heading, d.heading),
        horizontal_accuracy = COALESCE(EXCLUDED.horizontal_accuracy, d.horizontal_accuracy),
        altitude = COALESCE(EXCLUDED.altitude, d.altitude), speed_mph = COALESCE(EXCLUDED.speed_mph, d.speed_mph),
        location_updated_at = COALESCE(EXCLUDED.location_updated_at, d.location_updated_at),
        network_type = COALESCE(EXCLUDED.network_type, d.network_type),
        signal_strength = COALESCE(EXCLUDED.signal_strength, d.signal_strength),
        lid_is_open = CASE WHEN EXCLUDED.lid_updated_at IS NULL THEN d.lid_is_open ELSE EXCLUDED.lid_is_open END,
        lid_updated_at = CASE WHEN EXCLUDED.lid_updated_at IS NULL OR EXCLUDED.lid_is_open = d.lid_is_open
          THEN d.lid_updated_at ELSE EXCLUDED.lid_updated_at END,
        last_heartbeat_at = EXCLUDED.last_heartbeat_at,
        last_seen_at = GREATEST(d.last_seen_at, EXCLUDED.last_seen_at),
        battery_percent = COALESCE(EXCLUDED.battery_percent, d.battery_percent),
        updated_at = now()
      WHERE d.last_heartbeat_at IS NULL OR d.last_heartbeat_at < EXCLUDED.last_heartbeat_at`,
    upsertBatteries(prisma, rows),
    upsertComponents(prisma, rows),
  ]);
}

/**
 * A column of epoch milliseconds as a timestamp. The batch writes send times as numbers, not Dates:
 * Prisma's handling of Date parameters cost the ingest worker about 3 ms of CPU per 1,000 rows
 * (the component upsert of 1,000 rows: 5.2-8.6 ms with Dates, 2.7-3.6 ms with numbers).
 */
const fromMs = (column: 't' | 'seen') => Sql.raw(`(timestamptz 'epoch' + ${column} * interval '1 millisecond')`);

const lowestCharge = (h: Heartbeat) => (h.batteries.length === 0 ? null : Math.min(...h.batteries.map((b) => b.chargePercent)));
// Battery indexes are 0 to 15 (domain/heartbeat.ts).
const batteryIndexBits = (h: Heartbeat) => h.batteries.reduce((bits, b) => bits | (1 << b.batteryIndex), 0);

function upsertBatteries(prisma: Prisma, rows: Heartbeat[]) {
  const b = rows.flatMap((h) => h.batteries.map((x) => ({ ...x, serial: h.serial, t: h.timestamp })));
  return prisma.$executeRaw`
    INSERT INTO device_batteries AS b (serial_number, battery_index, charge_percent, voltage, current, temperature, is_charging, updated_at)
    SELECT s, i, charge, v, a, temp, charging, ${fromMs('t')}
    FROM unnest(${b.map((x) => x.serial)}::text[], ${b.map((x) => x.batteryIndex)}::int[],
      ${b.map((x) => x.chargePercent)}::int[], ${b.map((x) => x.voltage ?? null)}::float8[],
      ${b.map((x) => x.current ?? null)}::float8[], ${b.map((x) => x.temperature ?? null)}::float8[],
      ${b.map((x) => x.isCharging ?? null)}::bool[], ${b.map((x) => x.t)}::bigint[]) AS u(s, i, charge, v, a, temp, charging, t)
    ON CONFLICT (serial_number, battery_index) DO UPDATE SET
      charge_percent = EXCLUDED.charge_percent, voltage = EXCLUDED.voltage, current = EXCLUDED.current,
      temperature = EXCLUDED.temperature, is_charging = EXCLUDED.is_charging, updated_at = EXCLUDED.updated_at
    WHERE b.updated_at IS NULL OR b.updated_at < EXCLUDED.updated_at`;
}

/**
 * A component's row is written only when its code changes, so `updated_at` is when the code took
 * its value: what the robot workflow's live view says (`since`) and what `lid_updated_at` is for
 * the lid. Rewriting every unchanged row took PostgreSQL 5.5 ms for a batch of 1,000 components,
 * skipping them 3.1 ms. The stored code is a subquery per row on purpose: written as NOT EXISTS,
 * the same filter took 12.6 ms, more than rewriting every row. A changed code is taken only from
 * the robot's newest heartbeat (the devices upsert, earlier in the same transaction, has just made
 * it `last_heartbeat_at`).
 */
function upsertComponents(prisma: Prisma, rows: Heartbeat[]) {
  const c = rows.flatMap((h) =>
    Object.entries(h.components).map(([name, code]) => ({ serial: h.serial, name, code, t: h.timestamp })),
  );
  return prisma.$executeRaw`
    INSERT INTO device_components AS c (serial_number, component_name, status_code, updated_at)
    SELECT s, name, code, ${fromMs('t')}
    FROM unnest(${c.map((x) => x.serial)}::text[], ${c.map((x) => x.name)}::text[],
      ${c.map((x) => x.code)}::text[], ${c.map((x) => x.t)}::bigint[]) AS u(s, name, code, t)
    WHERE u.code IS DISTINCT FROM (SELECT o.status_code FROM device_components o WHERE o.serial_number = u.s AND o.component_name = u.name)
    ON CONFLICT (serial_number, component_name) DO UPDATE SET
      status_code = EXCLUDED.status_code, updated_at = EXCLUDED.updated_at
    WHERE EXCLUDED.updated_at >= (SELECT d.last_heartbeat_at FROM devices d WHERE d.serial_number = c.serial_number)`;
}

export type RejectedMessage = { topic: string; payload: string; reason: string; receivedAt: number };

export async function storeRejected(prisma: Prisma, rejected: RejectedMessage[]): Promise<void> {
  if (rejected.length === 0) return;
  await prisma.rejectedMessage.createMany({
    data: rejected.map((r) => ({ topic: storable(r.topic), payload: storable(r.payload), reason: storable(r.reason), receivedAt: new Date(r.receivedAt) })),
  });
}

// PostgreSQL text holds no NUL, and a robot chooses its topic and its component names: one such
// character in a reason would fail the insert, and the ingest worker would retry it for ever.
const storable = (text: string) => text.replaceAll('\u0000', '\\u0000');

/** The robot workflow's decisions: connectivity and the events it raised, in one transaction. */
export async function recordRobotChanges(
  prisma: Prisma,
  change: { serial: string; online: boolean; onlineChangedAt: number | null; events: DomainEvent[] },
): Promise<void> {
  const changedAt = change.onlineChangedAt === null ? null : new Date(change.onlineChangedAt);
  await prisma.$transaction([
    prisma.$executeRaw`
      INSERT INTO devices AS d (serial_number, online, connectivity_updated_at)
      VALUES (${change.serial}, ${change.online}, ${changedAt}::timestamptz)
      ON CONFLICT (serial_number) DO UPDATE SET online = EXCLUDED.online,
        connectivity_updated_at = EXCLUDED.connectivity_updated_at, updated_at = now()
      WHERE d.connectivity_updated_at IS NULL OR d.connectivity_updated_at <= EXCLUDED.connectivity_updated_at`,
    prisma.domainEvent.createMany({
      data: change.events.map((e) => ({
        id: e.id,
        type: e.type,
        serial: e.serial,
        occurredAt: new Date(e.occurredAt),
        data: e.data as object,
      })),
      skipDuplicates: true,
    }),
  ]);
  // Online is one input of the fleet view's status; the fleet row is recomputed under its own lock.
  await refreshFleetRow(prisma, change.serial);
}

/** The silence sweeper's query (ingest/silence-sweeper.ts): robots held online, last seen in [heardSince, silentSince). */
export async function findSilentRobots(prisma: Prisma, silentSince: Date, heardSince: Date): Promise<SilentRobot[]> {
  // No index on last_seen_at, on purpose: every heartbeat writes it, and an index would cost each
  // of those writes its in-place (HOT) update. The online index narrows this to the live fleet.
  const rows = await prisma.$queryRaw<{ serial_number: string; last_seen_at: Date }[]>`
    SELECT serial_number, last_seen_at FROM devices
    WHERE online AND last_seen_at < ${silentSince} AND last_seen_at >= ${heardSince}
    ORDER BY last_seen_at`;
  return rows.map((r) => ({ serial: r.serial_number, lastSeenAt: r.last_seen_at.getTime() }));
}

export async function readLastSeen(prisma: Prisma, serial: string): Promise<number | null> {
  const row = await prisma.device.findUnique({ where: { serialNumber: serial }, select: { lastSeenAt: true } });
  return row?.lastSeenAt?.getTime() ?? null;
}
