import { Prisma } from '../generated/prisma/client';
import type { FilterExpr, FilterFields, FilterOp, FilterValue, FilterValueType } from '../domain/filter';

/**
 * Turns a parsed filter into a SQL condition. Column expressions come only from the route's field
 * table and every value is a bound parameter, so no text of the filter string reaches SQL.
 */

export type SqlFilterField = {
  type: FilterValueType;
  sql: Prisma.Sql;
  /** Maps a filter value to what the column holds. */
  toColumn?: (value: FilterValue) => FilterValue;
  /** A field that is not one column (an element of a JSON array): the whole condition, given the operator and the bound value. */
  condition?: (op: FilterOp, value: FilterValue) => Prisma.Sql;
};
export type SqlFilterFields = Readonly<Record<string, SqlFilterField>>;

// `!=` matches rows where the column is NULL too, as "not WIFI" does for a robot with no network.
const operators: Record<FilterOp, Prisma.Sql> = {
  '=': Prisma.sql`=`,
  '!=': Prisma.sql`IS DISTINCT FROM`,
  '<': Prisma.sql`<`,
  '<=': Prisma.sql`<=`,
  '>': Prisma.sql`>`,
  '>=': Prisma.sql`>=`,
};

/** SQL for an operator, for a field's own `condition`. */
export const sqlOperator = (op: FilterOp): Prisma.Sql => operators[op];

export function filterTypes(fields: SqlFilterFields): FilterFields {
  return Object.fromEntries(Object.entries(fields).map(([name, f]) => [name, f.type]));
}

export function filterToSql(expr: FilterExpr | null, fields: SqlFilterFields): Prisma.Sql {
  if (expr === null) return Prisma.sql`TRUE`;
  if (expr.kind !== 'compare') {
    const joiner = expr.kind === 'and' ? Prisma.sql`AND` : Prisma.sql`OR`;
    return Prisma.sql`(${filterToSql(expr.left, fields)} ${joiner} ${filterToSql(expr.right, fields)})`;
  }
  const field = Object.hasOwn(fields, expr.field) ? fields[expr.field] : undefined;
  if (field === undefined) throw new Error(`filter field "${expr.field}" has no column`);
  const value = field.toColumn ? field.toColumn(expr.value) : expr.value;
  if (field.condition) return field.condition(expr.op, value);
  return Prisma.sql`${field.sql} ${operators[expr.op]} ${value}`;
}
