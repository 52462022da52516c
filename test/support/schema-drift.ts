import { get_dmmf } from '@prisma/prisma-schema-wasm';
import type { Client } from 'pg';

/**
 * Compares the tables schema.prisma describes (through Prisma's own DMMF) with those a database has.
 * A shape maps each table to labelled descriptions, e.g. "devices.online" -> "boolean NOT NULL DEFAULT".
 */
export type Shape = Map<string, Map<string, string>>;

type Field = {
  name: string;
  dbName?: string | null;
  kind: 'scalar' | 'enum' | 'object' | 'unsupported';
  type: string;
  isList: boolean;
  isRequired: boolean;
  hasDefaultValue: boolean;
  default?: unknown;
  nativeType?: [string, string[]] | null;
  relationFromFields?: string[];
  relationToFields?: string[];
  relationOnDelete?: string;
  relationOnUpdate?: string;
};
type Model = { name: string; dbName: string | null; fields: Field[] };
type Index = { model: string; type: string; fields: { name: string; sortOrder?: string }[] };
export type Dmmf = {
  datamodel: { models: Model[]; enums: { name: string; dbName?: string | null }[]; indexes: Index[] };
};

// ---- DMMF from Prisma's schema WebAssembly, as published in @prisma/prisma-schema-wasm (the build the
// prisma CLI bundles is not published on its own; this one only has to parse the schema the same way).

export function getDmmf(prismaSchema: string): Dmmf {
  return JSON.parse(get_dmmf(JSON.stringify({ prismaSchema, noColor: true }))) as Dmmf;
}

// ---- what schema.prisma says

const scalarTypes: Record<string, string> = {
  String: 'text',
  Int: 'integer',
  BigInt: 'bigint',
  Float: 'double precision',
  Decimal: 'numeric(65,30)',
  Boolean: 'boolean',
  DateTime: 'timestamp(3) without time zone',
  Json: 'jsonb',
  Bytes: 'bytea',
};

const withArgs = (name: string, args: string[]) => (args.length ? `${name}(${args.join(',')})` : name);

const nativeTypes: Record<string, (args: string[]) => string> = {
  VarChar: (a) => withArgs('character varying', a),
  Char: (a) => withArgs('character', a),
  Text: () => 'text',
  Uuid: () => 'uuid',
  SmallInt: () => 'smallint',
  Integer: () => 'integer',
  BigInt: () => 'bigint',
  Real: () => 'real',
  DoublePrecision: () => 'double precision',
  Decimal: (a) => withArgs('numeric', a),
  Timestamp: (a) => `${withArgs('timestamp', a)} without time zone`,
  Timestamptz: (a) => `${withArgs('timestamp', a)} with time zone`,
  Date: () => 'date',
  Time: (a) => `${withArgs('time', a)} without time zone`,
  Timetz: (a) => `${withArgs('time', a)} with time zone`,
  Json: () => 'json',
  JsonB: () => 'jsonb',
  ByteA: () => 'bytea',
  Boolean: () => 'boolean',
};

// Defaults Prisma Client fills in itself: the column gets no DEFAULT.
const clientSideDefaults = ['uuid', 'cuid', 'nanoid', 'ulid'];

const referentialActions: Record<string, string> = {
  Cascade: 'CASCADE',
  Restrict: 'RESTRICT',
  NoAction: 'NO ACTION',
  SetNull: 'SET NULL',
  SetDefault: 'SET DEFAULT',
};

const quoteIdent = (name: string) => (/^[a-z_][a-z0-9_$]*$/.test(name) ? name : `"${name}"`);
const tableOf = (model: Model) => model.dbName ?? model.name;
const columnOf = (field: Field) => field.dbName ?? field.name;

function columnType(field: Field, dmmf: Dmmf): string {
  let type: string | undefined;
  if (field.kind === 'enum') {
    const e = dmmf.datamodel.enums.find((x) => x.name === field.type);
    type = quoteIdent(e?.dbName ?? field.type);
  } else if (field.nativeType) {
    type = nativeTypes[field.nativeType[0]]?.(field.nativeType[1]);
  } else {
    type = scalarTypes[field.type];
  }
  if (!type) throw new Error(`no Postgres type known for ${field.name} ${field.type} ${field.nativeType ?? ''}`);
  return field.isList ? `${type}[]` : type;
}

function hasDbDefault(field: Field): boolean {
  const fn = (field.default as { name?: string } | undefined)?.name;
  return field.hasDefaultValue && !clientSideDefaults.includes(fn ?? '');
}

function describeColumn(field: Field, dmmf: Dmmf): string {
  // Prisma Migrate creates scalar lists as nullable columns (prisma/migrate#519).
  const notNull = field.isRequired && !field.isList;
  return `${columnType(field, dmmf)} ${notNull ? 'NOT NULL' : 'NULL'}${hasDbDefault(field) ? ' DEFAULT' : ''}`;
}

const columnList = (model: Model, names: string[]) =>
  names.map((n) => columnOf(model.fields.find((f) => f.name === n)!)).join(', ');

function describeRelation(field: Field, model: Model, models: Model[]): [string, string] {
  const target = models.find((m) => m.name === field.type)!;
  const onDelete = field.relationOnDelete ?? (field.isRequired ? 'Restrict' : 'SetNull');
  const onUpdate = field.relationOnUpdate ?? 'Cascade';
  return [
    `foreign key (${columnList(model, field.relationFromFields!)})`,
    `REFERENCES ${tableOf(target)}(${columnList(target, field.relationToFields!)})` +
      ` ON DELETE ${referentialActions[onDelete]} ON UPDATE ${referentialActions[onUpdate]}`,
  ];
}

function describeIndex(index: Index, model: Model): [string, string] {
  const columns = index.fields
    .map((f) => columnList(model, [f.name]) + (f.sortOrder === 'desc' ? ' DESC' : ''))
    .join(', ');
  if (index.type === 'id') return ['primary key', `(${columns})`];
  return [`index (${columns})`, index.type === 'unique' ? 'UNIQUE' : 'INDEX'];
}

export function schemaShape(dmmf: Dmmf): Shape {
  const { models, indexes } = dmmf.datamodel;
  const shape: Shape = new Map();
  for (const model of models) {
    const table = tableOf(model);
    const entries = new Map<string, string>();
    const add = ([label, value]: [string, string]) => entries.set(`${table} ${label}`, value);
    for (const field of model.fields) {
      if (field.kind === 'object') {
        if (field.relationFromFields?.length) add(describeRelation(field, model, models));
      } else {
        entries.set(`${table}.${columnOf(field)}`, describeColumn(field, dmmf));
      }
    }
    for (const index of indexes.filter((i) => i.model === model.name)) add(describeIndex(index, model));
    shape.set(table, entries);
  }
  return shape;
}

// ---- what the database has

const tableFilter = `c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p')
  AND c.relname <> '_prisma_migrations'`;

const columnsSql = `SELECT c.relname AS table, a.attname AS column, format_type(a.atttypid, a.atttypmod) AS type,
    a.attnotnull AS not_null, (a.atthasdef OR a.attidentity <> '') AS has_default
  FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
  WHERE ${tableFilter} AND a.attnum > 0 AND NOT a.attisdropped
  ORDER BY c.relname, a.attnum`;

// Names of the key columns, in order; for an index, only its key columns, with DESC where it has it.
const keyColumns = (rel: string, keys: string, index = false) => `ARRAY(
    SELECT a.attname::text ${index ? `|| CASE WHEN i.indoption[key.n - 1] & 1 = 1 THEN ' DESC' ELSE '' END` : ''}
    FROM unnest(${keys}::int2[]) WITH ORDINALITY key(attnum, n)
    JOIN pg_attribute a ON a.attrelid = ${rel} AND a.attnum = key.attnum
    ${index ? 'WHERE key.n <= i.indnkeyatts' : ''} ORDER BY key.n)`;

const indexesSql = `SELECT c.relname AS table, i.indisprimary AS primary, i.indisunique AS unique,
    ${keyColumns('i.indrelid', 'i.indkey', true)} AS columns
  FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
  WHERE ${tableFilter}`;

const foreignKeysSql = `SELECT c.relname AS table, r.relname AS ref_table,
    ${keyColumns('k.conrelid', 'k.conkey')} AS columns, ${keyColumns('k.confrelid', 'k.confkey')} AS ref_columns,
    k.confdeltype AS on_delete, k.confupdtype AS on_update
  FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid JOIN pg_class r ON r.oid = k.confrelid
  WHERE k.contype = 'f' AND ${tableFilter}`;

const tablesSql = `SELECT c.relname AS table FROM pg_class c WHERE ${tableFilter}`;

const pgActions: Record<string, string> = {
  a: 'NO ACTION',
  r: 'RESTRICT',
  c: 'CASCADE',
  n: 'SET NULL',
  d: 'SET DEFAULT',
};

export async function databaseShape(client: Client): Promise<Shape> {
  const shape: Shape = new Map();
  const add = (table: string, label: string, value: string) => shape.get(table)!.set(label, value);
  for (const r of (await client.query(tablesSql)).rows) shape.set(r.table, new Map());
  for (const r of (await client.query(columnsSql)).rows) {
    const value = `${r.type} ${r.not_null ? 'NOT NULL' : 'NULL'}${r.has_default ? ' DEFAULT' : ''}`;
    add(r.table, `${r.table}.${r.column}`, value);
  }
  for (const r of (await client.query(indexesSql)).rows) {
    const columns = r.columns.join(', ');
    if (r.primary) add(r.table, `${r.table} primary key`, `(${columns})`);
    else add(r.table, `${r.table} index (${columns})`, r.unique ? 'UNIQUE' : 'INDEX');
  }
  for (const r of (await client.query(foreignKeysSql)).rows) {
    const value =
      `REFERENCES ${r.ref_table}(${r.ref_columns.join(', ')})` +
      ` ON DELETE ${pgActions[r.on_delete]} ON UPDATE ${pgActions[r.on_update]}`;
    add(r.table, `${r.table} foreign key (${r.columns.join(', ')})`, value);
  }
  return shape;
}

// ---- the comparison

const union = <T>(a: Iterable<T>, b: Iterable<T>) => [...new Set([...a, ...b])];

/** One line per difference, e.g. "devices.lid_is_open: schema says boolean NOT NULL, migrations give boolean NULL". */
export function diffShapes(schema: Shape, database: Shape): string[] {
  const say = (label: string, s?: string, d?: string) =>
    `${label}: schema says ${s ?? 'nothing'}, migrations give ${d ?? 'nothing'}`;
  return union(schema.keys(), database.keys()).flatMap((table) => {
    const s = schema.get(table);
    const d = database.get(table);
    if (!s || !d) return [say(table, s && 'table', d && 'table')];
    return union(s.keys(), d.keys())
      .filter((label) => s.get(label) !== d.get(label))
      .map((label) => say(label, s.get(label), d.get(label)));
  });
}
