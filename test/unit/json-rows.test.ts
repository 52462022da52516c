import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { rowFromJson } from '../../infra/prisma';
import { getDmmf } from '../support/schema-drift';

/**
 * The fleet view reads its rows as JSON from PostgreSQL (infra/prisma.ts rowFromJson), which
 * relies on two naming rules of schema.prisma: every field is its column camelCased, and the
 * columns ending in `_at` are exactly the DateTime fields. A model it reads that breaks them breaks that read.
 */
const readAsJson = ['FleetDevice', 'Device', 'DeviceBattery', 'DeviceComponent', 'DeviceSoftware', 'LidCycle'];
const models = getDmmf(readFileSync(join(__dirname, '..', '..', 'prisma', 'schema.prisma'), 'utf8')).datamodel.models.filter((m) => readAsJson.includes(m.name));

test('the fleet view\'s tables are all in schema.prisma', () => expect(models.map((m) => m.name).sort()).toEqual([...readAsJson].sort()));

test.each(models.map((m) => [m.name, m] as const))('%s: fields are their columns camelCased, and *_at columns are its DateTimes', (_, model) => {
  const scalars = model.fields.filter((f) => f.kind === 'scalar' || f.kind === 'enum');
  const broken = scalars.filter((f) => {
    const column = f.dbName ?? f.name;
    return Object.keys(rowFromJson({ [column]: null }))[0] !== f.name || column.endsWith('_at') !== (f.type === 'DateTime');
  });
  expect(broken.map((f) => `${f.name} (${f.dbName ?? f.name}, ${f.type})`)).toEqual([]);
});

test('rowFromJson gives Prisma-shaped rows: camelCase keys, Dates for *_at, other values as they are', () => {
  const row = rowFromJson<Record<string, unknown>>({
    serial_number: 'R1',
    speed_mph: 3.5,
    last_heartbeat_at: '2026-12-04T10:00:00.123+00:00',
    ended_at: null,
    installed_components: [{ name: 'x', updated_at: 'not touched' }],
  });
  expect(row).toEqual({
    serialNumber: 'R1',
    speedMph: 3.5,
    lastHeartbeatAt: new Date('2026-12-04T10:00:00.123Z'),
    endedAt: null,
    installedComponents: [{ name: 'x', updated_at: 'not touched' }],
  });
});
