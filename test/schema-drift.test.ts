import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from 'pg';
import { applyMigrations, migrationsDir } from '../infra/migrate';
import { createTestDatabase } from './support/database';
import { databaseShape, diffShapes, getDmmf, schemaShape, type Shape } from './support/schema-drift';

const schema = readFileSync(join(__dirname, '..', 'prisma', 'schema.prisma'), 'utf8');

describe('prisma/schema.prisma and prisma/migrations', () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>> | undefined;
  let client: Client;
  let firstRun: string[];
  let migrated: Shape;

  beforeAll(async () => {
    database = await createTestDatabase('drift', { migrate: false });
    firstRun = await applyMigrations(database.url);
    client = new Client({ connectionString: database.url });
    await client.connect();
    migrated = await databaseShape(client);
  }, 60_000);

  afterAll(async () => {
    await client?.end();
    await database?.drop();
  }, 60_000);

  test('the migrations build exactly the tables schema.prisma describes', () => {
    expect(diffShapes(schemaShape(getDmmf(schema)), migrated)).toEqual([]);
  });

  test('applyMigrations records each migration with its sha256 and applies nothing the second time', async () => {
    const names = readdirSync(migrationsDir, { withFileTypes: true })
      .filter((d) => d.isDirectory())
      .map((d) => d.name)
      .sort();
    const sha256 = (name: string) =>
      createHash('sha256').update(readFileSync(join(migrationsDir, name, 'migration.sql'))).digest('hex');

    expect(firstRun).toEqual(names);
    expect(await applyMigrations(database!.url)).toEqual([]);
    const { rows } = await client.query(
      `SELECT migration_name, checksum, finished_at IS NOT NULL AS finished, rolled_back_at IS NULL AS kept
         FROM "_prisma_migrations" ORDER BY migration_name`,
    );
    expect(rows).toEqual(
      names.map((name) => ({ migration_name: name, checksum: sha256(name), finished: true, kept: true })),
    );
  });

  test.each([
    [
      'an extra column',
      ['  @@index([online])', '  extraColumn Int @map("extra_column")\n  @@index([online])'],
      ['devices.extra_column: schema says integer NOT NULL, migrations give nothing'],
    ],
    [
      'an optional column',
      ['lidIsOpen             Boolean   @default(false)', 'lidIsOpen             Boolean?  @default(false)'],
      ['devices.lid_is_open: schema says boolean NULL DEFAULT, migrations give boolean NOT NULL DEFAULT'],
    ],
    [
      'a longer varchar',
      ['@map("network_type") @db.VarChar(20)', '@map("network_type") @db.VarChar(30)'],
      ['devices.network_type: schema says character varying(30) NULL, migrations give character varying(20) NULL'],
    ],
    [
      'a default dropped',
      ['online                Boolean   @default(false)', 'online                Boolean'],
      ['devices.online: schema says boolean NOT NULL, migrations give boolean NOT NULL DEFAULT'],
    ],
    [
      'an index dropped',
      ['  @@index([online])\n', ''],
      ['devices index (online): schema says nothing, migrations give INDEX'],
    ],
    [
      'an index made unique',
      ['@@index([type, seq])', '@@unique([type, seq])'],
      ['domain_events index (type, seq): schema says UNIQUE, migrations give INDEX'],
    ],
    [
      'another primary key',
      [
        'BigInt   @id @default(autoincrement())\n  id         String   @unique',
        'BigInt   @default(autoincrement())\n  id         String   @id',
      ],
      [
        'domain_events primary key: schema says (id), migrations give (seq)',
        'domain_events index (id): schema says nothing, migrations give UNIQUE',
      ],
    ],
    [
      'another delete rule',
      [
        'onDelete: Cascade)\n\n  @@unique([serialNumber, batteryIndex])',
        'onDelete: Restrict)\n\n  @@unique([serialNumber, batteryIndex])',
      ],
      [
        'device_batteries foreign key (serial_number): ' +
          'schema says REFERENCES devices(serial_number) ON DELETE RESTRICT ON UPDATE CASCADE, ' +
          'migrations give REFERENCES devices(serial_number) ON DELETE CASCADE ON UPDATE CASCADE',
      ],
    ],
    [
      'an extra model',
      ['/// Robot messages', 'model Extra {\n  id Int @id\n}\n\n/// Robot messages'],
      ['Extra: schema says table, migrations give nothing'],
    ],
  ])('a schema with %s is reported', (_, [from, to], expected) => {
    expect(schema).toContain(from);
    const before = diffShapes(schemaShape(getDmmf(schema)), migrated);
    const after = diffShapes(schemaShape(getDmmf(schema.replace(from, to))), migrated);
    expect(after.filter((line) => !before.includes(line))).toEqual(expected);
  });
});
