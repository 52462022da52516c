import { FilterError, parseFilter, type FilterExpr, type FilterFields } from '../../domain/filter';
import { filterToSql, filterTypes } from '../../store/filter-sql';
import { deviceFilterFields } from '../../store/devices';

const fields: FilterFields = { serial: 'string', online: 'bool', lidOpen: 'bool', batteryPercent: 'number', networkType: 'string' };
const parse = (text: string) => parseFilter(text, fields);
const cmp = (field: string, op: string, value: string | number | boolean): FilterExpr => ({ kind: 'compare', field, op, value }) as FilterExpr;

function errorOf(text: string): string {
  try {
    parse(text);
  } catch (error) {
    expect(error).toBeInstanceOf(FilterError);
    return (error as Error).message;
  }
  throw new Error(`"${text}" parsed`);
}

describe('parseFilter', () => {
  it('reads an empty filter as no condition', () => {
    expect(parse('')).toBeNull();
    expect(parse('   ')).toBeNull();
  });

  it('reads one comparison with each operator', () => {
    for (const op of ['=', '!=', '<', '<=', '>', '>=']) {
      expect(parse(`batteryPercent${op}20`)).toEqual(cmp('batteryPercent', op, 20));
    }
  });

  it('types values by field: numbers, booleans, bare words and quoted strings', () => {
    expect(parse('batteryPercent >= 12.5')).toEqual(cmp('batteryPercent', '>=', 12.5));
    expect(parse('batteryPercent>-1')).toEqual(cmp('batteryPercent', '>', -1));
    expect(parse('online=false')).toEqual(cmp('online', '=', false));
    expect(parse('serial=ABC-123')).toEqual(cmp('serial', '=', 'ABC-123'));
    expect(parse('serial=007')).toEqual(cmp('serial', '=', '007'));
    expect(parse('serial="robot with spaces AND (parens)"')).toEqual(cmp('serial', '=', 'robot with spaces AND (parens)'));
    expect(parse('serial="say \\"hi\\" \\\\ bye"')).toEqual(cmp('serial', '=', 'say "hi" \\ bye'));
  });

  it('binds AND tighter than OR', () => {
    expect(parse('online=true OR lidOpen=true AND batteryPercent<20')).toEqual({
      kind: 'or',
      left: cmp('online', '=', true),
      right: { kind: 'and', left: cmp('lidOpen', '=', true), right: cmp('batteryPercent', '<', 20) },
    });
    expect(parse('online=true AND lidOpen=true OR batteryPercent<20')).toEqual({
      kind: 'or',
      left: { kind: 'and', left: cmp('online', '=', true), right: cmp('lidOpen', '=', true) },
      right: cmp('batteryPercent', '<', 20),
    });
  });

  it('lets parentheses override precedence', () => {
    expect(parse('(online=true OR lidOpen=true) AND batteryPercent<20')).toEqual({
      kind: 'and',
      left: { kind: 'or', left: cmp('online', '=', true), right: cmp('lidOpen', '=', true) },
      right: cmp('batteryPercent', '<', 20),
    });
    expect(parse('((serial=A))')).toEqual(cmp('serial', '=', 'A'));
  });

  it('chains left to right and accepts lower-case keywords', () => {
    expect(parse('serial=A or serial=B or serial=C')).toEqual({
      kind: 'or',
      left: { kind: 'or', left: cmp('serial', '=', 'A'), right: cmp('serial', '=', 'B') },
      right: cmp('serial', '=', 'C'),
    });
  });

  it('names an unknown field', () => {
    expect(errorOf('colour=red')).toMatch(/unknown field "colour"/);
    expect(errorOf('online=true AND toString=x')).toMatch(/unknown field "toString"/);
  });

  it('names the offending token of bad syntax', () => {
    expect(errorOf('online=true lidOpen=true')).toMatch(/expected AND or OR, found "lidOpen" at column 13/);
    expect(errorOf('online true')).toMatch(/expected an operator .* found "true"/);
    expect(errorOf('online=')).toMatch(/expected a value after "online=", found end of filter/);
    expect(errorOf('online=true AND')).toMatch(/expected a field name, found end of filter/);
    expect(errorOf('AND online=true')).toMatch(/expected a field name, found "AND" at column 1/);
    expect(errorOf('(online=true')).toMatch(/expected "\)" to close column 1/);
    expect(errorOf('online=true)')).toMatch(/found "\)" at column 12/);
    expect(errorOf('serial=="x"')).toMatch(/expected a value after "serial=", found "=" at column 8/);
    expect(errorOf('serial!x')).toMatch(/unexpected "!" at column 7/);
    expect(errorOf('serial="open')).toMatch(/unterminated string starting at column 8/);
  });

  it('names a value of the wrong type', () => {
    expect(errorOf('batteryPercent>low')).toMatch(/batteryPercent takes a number, found "low"/);
    expect(errorOf('batteryPercent>"20"')).toMatch(/batteryPercent takes a number/);
    expect(errorOf('online=yes')).toMatch(/online takes true or false, found "yes"/);
    expect(errorOf('online<true')).toMatch(/online is true\/false and takes only = or !=, found "<"/);
  });

  it('limits nesting', () => {
    expect(errorOf(`${'('.repeat(30)}online=true${')'.repeat(30)}`)).toMatch(/nested deeper than/);
  });

  it('keeps injection-like text a value', () => {
    const text = `serial="x' OR 1=1; DROP TABLE devices; --"`;
    expect(parse(text)).toEqual(cmp('serial', '=', "x' OR 1=1; DROP TABLE devices; --"));
    expect(errorOf("serial=x' OR 1=1")).toMatch(/unknown field "1"/);
  });
});

describe('filterToSql', () => {
  const toSql = (text: string) => filterToSql(parseFilter(text, filterTypes(deviceFilterFields)), deviceFilterFields);

  it('binds every value as a parameter', () => {
    const evil = `x'); DROP TABLE devices; --`;
    const sql = toSql(`serial="${evil}" OR (online=true AND batteryPercent<=20)`);
    expect(sql.values).toEqual([evil, true, 20]);
    expect(sql.text).not.toContain('DROP');
    expect(sql.text).toBe('(d.serial_number = $1 OR (d.online = $2 AND d.battery_percent <= $3))');
  });

  it('maps != to IS DISTINCT FROM and API enum names to stored values', () => {
    const sql = toSql('networkType!=NETWORK_TYPE_WIFI');
    expect(sql.text).toBe('d.network_type IS DISTINCT FROM $1');
    expect(sql.values).toEqual(['WIFI']);
  });

  it('is TRUE without a filter', () => {
    expect(filterToSql(null, deviceFilterFields).text).toBe('TRUE');
  });
});
