/**
 * The list filter language of CONTRACT.md: `field op value` joined by AND/OR, with parentheses.
 * AND binds tighter than OR, as in SQL. Each list route passes the fields it knows and their types;
 * this only parses and type-checks, it knows nothing of tables.
 */

export const filterOps = ['=', '!=', '<', '<=', '>', '>='] as const;
export type FilterOp = (typeof filterOps)[number];
export type FilterValue = string | number | boolean;
export type FilterValueType = 'string' | 'number' | 'bool';
export type FilterFields = Readonly<Record<string, FilterValueType>>;

export type FilterExpr =
  | { kind: 'compare'; field: string; op: FilterOp; value: FilterValue }
  | { kind: 'and' | 'or'; left: FilterExpr; right: FilterExpr };

export class FilterError extends Error {
  override name = 'FilterError';
}

export const MAX_FILTER_DEPTH = 20;

type Token =
  | { kind: 'word' | 'string'; text: string; column: number }
  | { kind: 'op'; text: FilterOp; column: number }
  | { kind: '(' | ')' | 'end'; text: string; column: number };

/** Returns null for an empty filter: no condition. */
export function parseFilter(text: string, fields: FilterFields): FilterExpr | null {
  const tokens = tokenize(text);
  if (tokens[0].kind === 'end') return null;
  const parser = new Parser(tokens, fields);
  const expr = parser.orExpr(0);
  parser.expectEnd();
  return expr;
}

const OPERATOR_CHARS = '=!<>';
const BREAK_CHARS = `()"${OPERATOR_CHARS}`;

function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const ch = text[i];
    const column = i + 1;
    if (/\s/.test(ch)) {
      i++;
    } else if (ch === '(' || ch === ')') {
      tokens.push({ kind: ch, text: ch, column });
      i++;
    } else if (ch === '"') {
      const { value, end } = readString(text, i);
      tokens.push({ kind: 'string', text: value, column });
      i = end;
    } else if (OPERATOR_CHARS.includes(ch)) {
      const two = text.slice(i, i + 2);
      const op = (filterOps as readonly string[]).includes(two) ? two : ch;
      if (!(filterOps as readonly string[]).includes(op)) throw new FilterError(`unexpected "${ch}" at column ${column}`);
      tokens.push({ kind: 'op', text: op as FilterOp, column });
      i += op.length;
    } else {
      let end = i;
      while (end < text.length && !/\s/.test(text[end]) && !BREAK_CHARS.includes(text[end])) end++;
      tokens.push({ kind: 'word', text: text.slice(i, end), column });
      i = end;
    }
  }
  tokens.push({ kind: 'end', text: 'end of filter', column: text.length + 1 });
  return tokens;
}

/** A double-quoted string; `\"` and `\\` escape. */
function readString(text: string, start: number): { value: string; end: number } {
  let value = '';
  for (let i = start + 1; i < text.length; i++) {
    const ch = text[i];
    if (ch === '"') return { value, end: i + 1 };
    if (ch === '\\' && i + 1 < text.length) value += text[++i];
    else value += ch;
  }
  throw new FilterError(`unterminated string starting at column ${start + 1}`);
}

const isKeyword = (t: Token, keyword: 'AND' | 'OR') => t.kind === 'word' && t.text.toUpperCase() === keyword;
const describeToken = (t: Token) => (t.kind === 'end' ? t.text : `"${t.text}" at column ${t.column}`);

class Parser {
  private at = 0;

  constructor(
    private readonly tokens: Token[],
    private readonly fields: FilterFields,
  ) {}

  orExpr(depth: number): FilterExpr {
    let left = this.andExpr(depth);
    while (isKeyword(this.peek(), 'OR')) {
      this.at++;
      left = { kind: 'or', left, right: this.andExpr(depth) };
    }
    return left;
  }

  expectEnd(): void {
    const t = this.peek();
    if (t.kind !== 'end') throw new FilterError(`expected AND or OR, found ${describeToken(t)}`);
  }

  private andExpr(depth: number): FilterExpr {
    let left = this.term(depth);
    while (isKeyword(this.peek(), 'AND')) {
      this.at++;
      left = { kind: 'and', left, right: this.term(depth) };
    }
    return left;
  }

  private term(depth: number): FilterExpr {
    const t = this.next();
    if (t.kind === '(') {
      if (depth >= MAX_FILTER_DEPTH) throw new FilterError(`parentheses nested deeper than ${MAX_FILTER_DEPTH} at column ${t.column}`);
      const inner = this.orExpr(depth + 1);
      const close = this.next();
      if (close.kind !== ')') throw new FilterError(`expected ")" to close column ${t.column}, found ${describeToken(close)}`);
      return inner;
    }
    if (t.kind !== 'word' || isKeyword(t, 'AND') || isKeyword(t, 'OR')) throw new FilterError(`expected a field name, found ${describeToken(t)}`);
    return this.comparison(t.text);
  }

  private comparison(field: string): FilterExpr {
    const type = Object.hasOwn(this.fields, field) ? this.fields[field] : undefined;
    if (type === undefined) {
      throw new FilterError(`unknown field "${field}" (known fields: ${Object.keys(this.fields).join(', ')})`);
    }
    const op = this.next();
    if (op.kind !== 'op') throw new FilterError(`expected an operator (${filterOps.join(' ')}) after "${field}", found ${describeToken(op)}`);
    const raw = this.next();
    if (raw.kind !== 'word' && raw.kind !== 'string') throw new FilterError(`expected a value after "${field}${op.text}", found ${describeToken(raw)}`);
    return { kind: 'compare', field, op: op.text, value: typedValue(field, type, op.text, raw) };
  }

  private peek(): Token {
    return this.tokens[this.at];
  }

  private next(): Token {
    const t = this.tokens[this.at];
    if (t.kind !== 'end') this.at++;
    return t;
  }
}

function typedValue(field: string, type: FilterValueType, op: FilterOp, raw: Token): FilterValue {
  if (type === 'string') return raw.text;
  if (type === 'number') {
    if (raw.kind === 'word' && /^-?\d+(\.\d+)?$/.test(raw.text)) return Number(raw.text);
    throw new FilterError(`${field} takes a number, found ${describeToken(raw)}`);
  }
  if (op !== '=' && op !== '!=') throw new FilterError(`${field} is true/false and takes only = or !=, found "${op}"`);
  if (raw.kind === 'word' && (raw.text === 'true' || raw.text === 'false')) return raw.text === 'true';
  throw new FilterError(`${field} takes true or false, found ${describeToken(raw)}`);
}
