import fc from 'fast-check';
import { fieldPath } from '../../domain/field-path';
import type { OpenApiDocument, RouteSpec } from './routes';

/**
 * Reads the OpenAPI document as a contract tester would: a JSON Schema validator for the subset
 * the document uses, a generator of values the document calls valid, and for every constraint it
 * declares the values just inside and just outside it. test/contract.test.ts sends them to the server.
 */

export type Schema = { [keyword: string]: any };
type Path = (string | number)[];

/** One request's inputs; `body` absent means no body. */
export type RequestInput = { path: Record<string, unknown>; query: Record<string, unknown>; header: Record<string, unknown>; body?: unknown };

/**
 * A request built to test one constraint; `field` is what a 400 must name (null: any field), or
 * inside an anyOf (z.union) the union or a field between it and `field`.
 */
export type Case = { what: string; input: RequestInput; field: string | null; union?: string | null };

type Parameter = { name: string; in: string; required?: boolean; schema: Schema };
type Operation = { parameters?: Parameter[]; requestBody?: { required?: boolean; content?: Record<string, { schema?: Schema }> }; responses?: Record<string, any> };

const SECTIONS = ['path', 'query', 'header'] as const;
// Keywords that say nothing a request can violate.
const ANNOTATIONS = new Set(['description', 'default', 'examples', 'example', 'title', 'deprecated', 'readOnly', 'writeOnly', 'discriminator', 'x-section']);
// Formats whose rules are also declared as a pattern, or that are open-ended descriptions (filter, page-token).
const GENERATED_FORMATS = new Set(['date-time', 'uuid']);
const MAX_GENERATED_LENGTH = 40;

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
const typesOf = (s: Schema): string[] => (s.type === undefined ? [] : Array.isArray(s.type) ? s.type : [s.type]);
const deepEqual = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/** Characters of the Basic Multilingual Plane but NUL and surrogates: the document counts UTF-16 units and refuses U+0000. */
const bmpChar = fc.oneof(
  { weight: 4, arbitrary: fc.integer({ min: 0x20, max: 0x7e }) },
  { weight: 1, arbitrary: fc.integer({ min: 0x01, max: 0xd7ff }) },
  { weight: 1, arbitrary: fc.integer({ min: 0xe000, max: 0xfffd }) },
).map((c) => String.fromCharCode(c));

export class Contract {
  constructor(readonly doc: OpenApiDocument) {}

  operation(route: RouteSpec): Operation {
    const op = this.doc.paths[route.path]?.[route.method.toLowerCase()] as Operation | undefined;
    if (!op) throw new Error(`the document has no ${route.method} ${route.path}`);
    return op;
  }

  /** The route's inputs as one schema: path, query and header parameters, and the JSON body. */
  inputSchema(route: RouteSpec): Schema {
    const op = this.operation(route);
    const params = op.parameters ?? [];
    const section = (where: string) => {
      const here = params.filter((p) => p.in === where);
      return { 'x-section': where, type: 'object', properties: Object.fromEntries(here.map((p) => [p.name, p.schema])), required: here.filter((p) => p.required).map((p) => p.name) };
    };
    const body = op.requestBody?.content?.['application/json']?.schema;
    return {
      type: 'object',
      properties: { ...Object.fromEntries(SECTIONS.map((s) => [s, section(s)])), ...(body ? { body } : {}) },
      required: [...SECTIONS, ...(op.requestBody?.required ? ['body'] : [])],
    };
  }

  deref(schema: Schema | boolean | undefined): Schema {
    if (schema === undefined || schema === true) return {};
    if (schema === false) return { not: {} };
    if (typeof schema.$ref === 'string') {
      const target = this.doc.components?.schemas?.[schema.$ref.replace('#/components/schemas/', '')];
      if (!target) throw new Error(`unresolved ${schema.$ref}`);
      const { $ref: _, ...rest } = schema;
      return Object.keys(rest).length ? this.merge(target as Schema, rest) : this.deref(target as Schema);
    }
    return schema;
  }

  // ---- validation

  /** What `value` breaks of `schema`, as `<path>: <keyword>` lines; empty when valid. */
  violations(schema: Schema | boolean | undefined, value: unknown, path: Path = []): string[] {
    const s = this.deref(schema);
    const out: string[] = [];
    const fail = (keyword: string) => out.push(`${fieldPath(path)}: ${keyword}`);
    for (const sub of s.allOf ?? []) out.push(...this.violations(sub, value, path));
    if (s.anyOf && !s.anyOf.some((b: Schema) => this.isValid(b, value))) fail('anyOf');
    if (s.oneOf && s.oneOf.filter((b: Schema) => this.isValid(b, value)).length !== 1) fail('oneOf');
    if (s.not && this.isValid(s.not, value)) fail('not');
    if (s.if !== undefined) {
      const branch = this.isValid(s.if, value) ? s.then : s.else;
      if (branch !== undefined) out.push(...this.violations(branch, value, path));
    }
    if ('const' in s && !deepEqual(s.const, value)) fail('const');
    if (s.enum && !s.enum.some((e: unknown) => deepEqual(e, value))) fail('enum');
    const types = typesOf(s);
    if (types.length && !types.some((t) => this.hasType(t, value))) {
      fail('type');
      return out;
    }
    if (typeof value === 'string') {
      if (s.minLength !== undefined && value.length < s.minLength) fail('minLength');
      if (s.maxLength !== undefined && value.length > s.maxLength) fail('maxLength');
      if (s.pattern !== undefined && !new RegExp(s.pattern).test(value)) fail('pattern');
    }
    if (typeof value === 'number') {
      if (s.minimum !== undefined && value < s.minimum) fail('minimum');
      if (s.maximum !== undefined && value > s.maximum) fail('maximum');
      if (s.exclusiveMinimum !== undefined && value <= s.exclusiveMinimum) fail('exclusiveMinimum');
      if (s.exclusiveMaximum !== undefined && value >= s.exclusiveMaximum) fail('exclusiveMaximum');
      if (s.multipleOf !== undefined && !Number.isInteger(value / s.multipleOf)) fail('multipleOf');
    }
    if (Array.isArray(value)) {
      if (s.minItems !== undefined && value.length < s.minItems) fail('minItems');
      if (s.maxItems !== undefined && value.length > s.maxItems) fail('maxItems');
      if (s.items !== undefined) value.forEach((item, i) => out.push(...this.violations(s.items, item, [...path, i])));
    }
    if (isObject(value)) {
      const keys = Object.keys(value);
      for (const name of s.required ?? []) if (!(name in value)) out.push(`${fieldPath([...path, name])}: required`);
      if (s.minProperties !== undefined && keys.length < s.minProperties) fail('minProperties');
      if (s.maxProperties !== undefined && keys.length > s.maxProperties) fail('maxProperties');
      for (const key of keys) {
        if (s.propertyNames !== undefined && !this.isValid(s.propertyNames, key)) out.push(`${fieldPath([...path, key])}: propertyNames`);
        if (s.properties && key in s.properties) out.push(...this.violations(s.properties[key], value[key], [...path, key]));
        else if (s.additionalProperties !== undefined) out.push(...this.violations(s.additionalProperties, value[key], [...path, key]));
      }
    }
    return out;
  }

  isValid(schema: Schema | boolean | undefined, value: unknown): boolean {
    return this.violations(schema, value).length === 0;
  }

  private hasType(type: string, value: unknown): boolean {
    switch (type) {
      case 'null':
        return value === null;
      case 'integer':
        return typeof value === 'number' && Number.isInteger(value);
      case 'number':
        return typeof value === 'number' && Number.isFinite(value);
      case 'array':
        return Array.isArray(value);
      case 'object':
        return isObject(value);
      default:
        return typeof value === type;
    }
  }

  // ---- generation

  /** Schemas that must all hold, as one the generator can start from (the validator has the last word). */
  merge(...schemas: (Schema | boolean | undefined)[]): Schema {
    const out: Schema = {};
    for (const raw of schemas) {
      const s = this.deref(raw);
      for (const [k, v] of Object.entries(s)) {
        if (k === 'properties') {
          out.properties = { ...out.properties };
          for (const [name, p] of Object.entries(v as Record<string, Schema>)) out.properties[name] = out.properties[name] ? this.merge(out.properties[name], p) : p;
        } else if (k === 'required') out.required = [...new Set([...(out.required ?? []), ...v])];
        else if (k === 'enum' && out.enum) out.enum = out.enum.filter((e: unknown) => v.some((x: unknown) => deepEqual(x, e)));
        else if ((k === 'anyOf' || k === 'oneOf' || k === 'allOf') && out[k]) out.allOf = [...(out.allOf ?? []), { [k]: v }];
        else out[k] = v;
      }
    }
    return out;
  }

  /**
   * Values the document calls valid, or null when it describes them only in words (a filter
   * without examples, a page token): an optional field of that kind is left out. `full` puts in
   * every optional field, one entry in every map and one item in every array.
   */
  arbitrary(schema: Schema | boolean | undefined, full = false): fc.Arbitrary<unknown> | null {
    const s = this.deref(schema);
    const valid = (a: fc.Arbitrary<unknown> | null) => a && a.filter((v) => this.isValid(s, v));
    const branches = s.anyOf ?? s.oneOf;
    if (branches) {
      const { anyOf: _a, oneOf: _o, ...rest } = s;
      const each = branches.map((b: Schema) => valid(this.arbitrary(this.merge(rest, b), full))).filter(Boolean) as fc.Arbitrary<unknown>[];
      return each.length ? fc.oneof(...each) : null;
    }
    if (s.allOf) {
      const { allOf, ...rest } = s;
      return valid(this.arbitrary(this.merge(rest, ...allOf), full));
    }
    if (s.if !== undefined) {
      const { if: when, then, else: otherwise, ...rest } = s;
      const holds = valid(this.arbitrary(this.merge(rest, when, then ?? {}), full));
      const fails = valid(this.arbitrary(this.merge(rest, otherwise ?? {}), full));
      const either = [holds, fails].filter(Boolean) as fc.Arbitrary<unknown>[];
      return either.length ? fc.oneof(...either) : null;
    }
    if ('const' in s) return fc.constant(s.const);
    if (s.enum) return s.enum.length ? fc.constantFrom(...s.enum) : null;
    const types = typesOf(s);
    const options = (types.length ? types : ['object']).map((t) => this.ofType(t, s, full)).filter(Boolean) as fc.Arbitrary<unknown>[];
    return options.length ? fc.oneof(...options) : null;
  }

  private ofType(type: string, s: Schema, full: boolean): fc.Arbitrary<unknown> | null {
    switch (type) {
      case 'null':
        return fc.constant(null);
      case 'boolean':
        return fc.boolean();
      case 'string':
        return this.strings(s);
      case 'integer': {
        const min = s.exclusiveMinimum !== undefined ? Math.floor(s.exclusiveMinimum) + 1 : (s.minimum ?? -(2 ** 31));
        const max = s.exclusiveMaximum !== undefined ? Math.ceil(s.exclusiveMaximum) - 1 : (s.maximum ?? 2 ** 31);
        return min <= max ? fc.integer({ min: Math.max(min, Number.MIN_SAFE_INTEGER), max: Math.min(max, Number.MAX_SAFE_INTEGER) }) : null;
      }
      case 'number': {
        const min = s.minimum ?? s.exclusiveMinimum ?? -1e9;
        const max = s.maximum ?? s.exclusiveMaximum ?? 1e9;
        return fc.double({ min, max, noNaN: true, noDefaultInfinity: true }).filter((n) => this.isValid(s, n));
      }
      case 'array': {
        const items = this.arbitrary(s.items, full);
        const minLength = Math.max(s.minItems ?? 0, full ? 1 : 0);
        if (!items) return minLength === 0 ? fc.constant([]) : null;
        return fc.array(items, { minLength, maxLength: Math.min(s.maxItems ?? minLength + 4, minLength + 4) });
      }
      case 'object':
        return this.objects(s, full);
      default:
        return null;
    }
  }

  private strings(s: Schema): fc.Arbitrary<string> | null {
    if (s.format && !GENERATED_FORMATS.has(s.format)) return s.examples?.length ? fc.constantFrom(...(s.examples as string[])) : null;
    const fits = (v: string) => this.isValid(s, v);
    if (s.format === 'date-time') {
      // Between a minute and ten days ahead: a time a client would send (an expiry must lie ahead).
      return fc.integer({ min: 60_000, max: 10 * 86_400_000 }).map((ms) => new Date(Date.now() + ms).toISOString());
    }
    if (s.format === 'uuid') return fc.uuid().filter(fits);
    if (s.pattern !== undefined) return fc.stringMatching(new RegExp(s.pattern)).filter(fits);
    const minLength = s.minLength ?? 0;
    const maxLength = s.maxLength ?? MAX_GENERATED_LENGTH;
    const short = fc.string({ unit: bmpChar, minLength, maxLength: Math.min(maxLength, Math.max(minLength, MAX_GENERATED_LENGTH)) });
    // And now and then exactly as long as the document allows.
    return fc.oneof({ weight: 9, arbitrary: short }, { weight: 1, arbitrary: fc.string({ unit: bmpChar, minLength: maxLength, maxLength }) });
  }

  private objects(s: Schema, full: boolean): fc.Arbitrary<unknown> | null {
    const required = new Set<string>(s.required ?? []);
    const fields: Record<string, fc.Arbitrary<unknown>> = {};
    for (const [name, prop] of Object.entries((s.properties ?? {}) as Record<string, Schema>)) {
      const arb = this.arbitrary(prop, full);
      if (!arb) {
        if (required.has(name)) return null;
        continue;
      }
      fields[name] = required.has(name) || full ? arb : fc.option(arb, { nil: undefined, freq: 2 });
    }
    const fixed = fc.record(fields).map((r) => Object.fromEntries(Object.entries(r).filter(([, v]) => v !== undefined)));
    const entrySchema = s.additionalProperties;
    const isMap = entrySchema !== undefined && entrySchema !== false && entrySchema !== true;
    if (!isMap) {
      if (entrySchema === false || s['x-section']) return fixed;
      // Fields the document does not name are allowed: the server must ignore them.
      return fc.tuple(fixed, fc.boolean()).map(([r, extra]) => (extra ? { ...r, unknownField: 'ignored' } : r));
    }
    const values = this.arbitrary(entrySchema, full);
    const keys = this.arbitrary(s.propertyNames ?? { type: 'string', minLength: 1, maxLength: 20 });
    const minEntries = Math.max((s.minProperties ?? 0) - Object.keys(fields).length, full ? 1 : 0);
    if (!values || !keys) return minEntries === 0 ? fixed : null;
    const maxEntries = Math.min(s.maxProperties ?? minEntries + 3, minEntries + 3);
    const entries = fc.uniqueArray(fc.tuple(keys as fc.Arbitrary<string>, values), { minLength: minEntries, maxLength: maxEntries, selector: ([k]) => k });
    return fc.tuple(entries, fixed).map(([e, r]) => ({ ...Object.fromEntries(e), ...r }));
  }

  /** One value of `schema`, reproducibly. */
  sample(schema: Schema | boolean | undefined, seed: number, full = false): unknown {
    const arb = this.arbitrary(schema, full);
    if (!arb) throw new Error(`cannot make a value of ${JSON.stringify(schema).slice(0, 200)}`);
    return fc.sample(arb, { numRuns: 1, seed })[0];
  }

  // ---- constraints

  /**
   * For every constraint `schema` declares, inputs just outside it (and just inside, where the
   * boundary is a number), each a copy of `base` with one value changed. `unhandled` collects the
   * keywords no case was made for, so a new kind of constraint cannot pass untested.
   */
  cases(schema: Schema, base: unknown, seed: number, unhandled: string[] = []): Case[] {
    const out: Case[] = [];
    this.walk(schema, [], base, seed, out, unhandled);
    return out;
  }

  /** `union`: the outermost anyOf around `at`; a 400 may name it, or a field on the way down, instead of the field itself (z.union does). */
  private walk(schema: Schema | boolean | undefined, at: Path, base: unknown, seed: number, out: Case[], unhandled: string[], union?: Path): void {
    const s = this.deref(schema);
    const here = valueAt(base, at);
    const where = placeOf(at);
    // At a union itself the server cannot tell which branch was meant: any field inside it will do.
    const atUnion = union !== undefined && union.length === at.length;
    const put = (what: string, value: unknown, field = expectedField(at)) =>
      out.push({
        what: `${what} at ${where}`,
        input: setAt(base, at, value) as RequestInput,
        field: atUnion ? expectedField(union) : field,
        ...(union && !atUnion ? { union: expectedField(union) } : {}),
      });
    const branches = s.anyOf ?? s.oneOf;
    if (branches) {
      const { anyOf: _a, oneOf: _o, ...rest } = s;
      branches.forEach((branch: Schema, i: number) => {
        const merged = this.merge(rest, branch);
        const value = this.sampleWhere(this.arbitrary(merged, true), (v) => this.isValid(s, v), seed + i);
        // A oneOf is a discriminated union: its 400 names the field inside the branch.
        if (value !== undefined) this.walk(merged, at, setAt(base, at, value), seed + i, out, unhandled, s.anyOf ? (union ?? at) : union);
      });
      return;
    }
    for (const sub of s.allOf ?? []) this.walk(sub, at, base, seed, out, unhandled, union);
    const param = at.length === 2 && (SECTIONS as readonly unknown[]).includes(at[0]) ? (at[0] as string) : null;
    const handled = new Set<string>(['type', 'anyOf', 'oneOf', 'allOf', 'properties', 'items', 'additionalProperties', 'nullable', 'format']);
    const types = typesOf(s);

    if (s.if !== undefined && s.else === undefined) {
      handled.add('if').add('then');
      const { if: when, then, ...rest } = s;
      const holds = this.arbitrary(this.merge(rest, when), true);
      const breaking = this.sampleWhere(holds, (v) => this.isValid(when, v) && this.isValid(rest, v) && !this.isValid(then, v), seed);
      if (breaking !== undefined) put('a value that meets the "if" of a condition but not its "then"', breaking, null);
      const meeting = this.sampleWhere(this.arbitrary(this.merge(rest, when, then), true), (v) => this.isValid(s, v) && this.isValid(when, v), seed);
      if (meeting !== undefined) put('a value that meets the "if" of a condition and its "then"', meeting, null);
    }
    if ('const' in s || s.enum) {
      handled.add('const').add('enum');
      put('a value outside the enum', typeof (s.enum?.[0] ?? s.const) === 'number' ? 987654321 : 'NOT_A_LISTED_VALUE');
    }
    if (param) {
      // A parameter is text on the wire: only a number can have the wrong type.
      if (types.includes('integer') || types.includes('number')) put('text where a number belongs', 'abc');
    } else if (types.length && at[0] === 'body') {
      const wrong = [null, 12345, 'text', true, [], {}].find((v) => !types.some((t) => this.hasType(t, v)));
      if (wrong !== undefined) put(`${wrong === null ? 'null' : Array.isArray(wrong) ? 'a list' : `a ${typeof wrong}`} where the type is ${types.join(' or ')}`, wrong);
    }
    if (types.includes('string') || typeof here === 'string') {
      handled.add('minLength').add('maxLength').add('pattern');
      const fitsOthers = (v: string, except: string) => this.violations(s, v).every((x) => x.endsWith(`: ${except}`));
      const filler = (length: number, except?: string) => {
        for (const c of ['a', '1', 'A', 'x', '0', '-', 'Z']) {
          const v = c.repeat(length);
          if (except ? fitsOthers(v, except) : this.isValid(s, v)) return v;
        }
        return undefined;
      };
      if (s.pattern !== undefined) {
        const candidates = ['!', 'a b', '~~', '%', '\u00e9\u00e9', 'not-matching', '', ...(s.maxLength ? [] : ['x'.repeat(300)])];
        const breaking = candidates.find((v) => !new RegExp(s.pattern).test(v) && (param !== 'path' || v !== '') && fitsOthers(v, 'pattern')) ?? candidates.find((v) => !new RegExp(s.pattern).test(v) && v !== '');
        if (breaking !== undefined) put('a value that does not match the pattern', breaking);
      }
      if (s.minLength !== undefined && s.minLength > 0 && !(param === 'path' && s.minLength === 1)) {
        const short = filler(s.minLength - 1, 'minLength') ?? 'a'.repeat(s.minLength - 1);
        put(`${s.minLength - 1} characters`, short);
        const edge = filler(s.minLength);
        if (edge !== undefined && !(s.format && !GENERATED_FORMATS.has(s.format))) put(`exactly ${s.minLength} characters`, edge);
      }
      if (s.maxLength !== undefined) {
        put(`${s.maxLength + 1} characters`, filler(s.maxLength + 1, 'maxLength') ?? 'a'.repeat(s.maxLength + 1));
        const edge = filler(s.maxLength);
        if (edge !== undefined && !(s.format && !GENERATED_FORMATS.has(s.format))) put(`exactly ${s.maxLength} characters`, edge);
      }
      if (s.format === 'date-time') put('a time that is not RFC 3339', '2030-01-01 12:00:00');
      if (s.format === 'uuid') put('a value that is not a UUID', 'not-a-uuid');
    }
    if (types.includes('integer') || types.includes('number')) {
      handled.add('minimum').add('maximum').add('exclusiveMinimum').add('exclusiveMaximum');
      const step = types.includes('integer') ? 1 : 0.5;
      if (s.minimum !== undefined) {
        put(`${s.minimum - step}, under the minimum`, s.minimum - step);
        put(`${s.minimum}, the minimum`, s.minimum);
      }
      if (s.maximum !== undefined) {
        put(`${s.maximum + step}, over the maximum`, s.maximum + step);
        put(`${s.maximum}, the maximum`, s.maximum);
      }
      if (s.exclusiveMinimum !== undefined) put(`${s.exclusiveMinimum}, the exclusive minimum`, s.exclusiveMinimum);
      if (s.exclusiveMaximum !== undefined) put(`${s.exclusiveMaximum}, the exclusive maximum`, s.exclusiveMaximum);
      if (types.includes('integer') && !types.includes('number')) {
        const low = s.minimum ?? (s.exclusiveMinimum !== undefined ? s.exclusiveMinimum + 1 : 0);
        put('a fraction where an integer belongs', low + 0.5);
      }
    }
    if (Array.isArray(here)) {
      handled.add('minItems').add('maxItems');
      const item = here[0] ?? this.sample(s.items, seed, false);
      if (s.minItems !== undefined && s.minItems > 0) put(`${s.minItems - 1} items`, Array(s.minItems - 1).fill(item));
      if (s.maxItems !== undefined) {
        const small = this.smallest(s.items, seed) ?? item;
        put(`${s.maxItems + 1} items`, Array(s.maxItems + 1).fill(small));
        put(`exactly ${s.maxItems} items`, Array(s.maxItems).fill(small));
      }
      if (here.length > 0) this.walk(s.items, [...at, 0], base, seed, out, unhandled, union);
    }
    if (isObject(here)) {
      handled.add('required').add('minProperties').add('maxProperties').add('propertyNames');
      // Of the request itself only the body can be left out; a path parameter left out is another path.
      const removable = at.length === 0 ? ['body'] : s['x-section'] === 'path' ? [] : (s.required ?? []);
      for (const name of (s.required ?? []).filter((n: string) => removable.includes(n) && n in here)) {
        put(`leaving out required ${name}`, omit(here, name), expectedField([...at, name]));
      }
      if (s.additionalProperties === false) put('a field the document does not name', { ...here, unexpectedField: 1 });
      const isMap = isObject(s.additionalProperties) || s.additionalProperties === true;
      if (isMap) {
        const keyFor = (i: number) => ['k', 'key_', 'K', 'a'].map((p) => `${p}${i}`).find((k) => s.propertyNames === undefined || this.isValid(s.propertyNames, k));
        const entry = this.smallest(s.additionalProperties, seed) ?? Object.values(here)[0];
        // The entries already there first (they may be what a condition asks for), then made-up ones.
        const withEntries = (n: number) => {
          const kept = Object.entries(here).slice(0, n);
          const keys = Array.from({ length: n - kept.length }, (_, i) => keyFor(i));
          return keys.every((k) => k !== undefined && !(k in here)) ? { ...Object.fromEntries(kept), ...Object.fromEntries(keys.map((k) => [k, entry])) } : undefined;
        };
        const putEntries = (what: string, n: number) => {
          const value = withEntries(n);
          if (value) put(what, value);
        };
        if (s.minProperties !== undefined && s.minProperties > 0) {
          putEntries(`${s.minProperties - 1} entries`, s.minProperties - 1);
          putEntries(`exactly ${s.minProperties} entries`, s.minProperties);
        }
        if (s.maxProperties !== undefined) {
          putEntries(`${s.maxProperties + 1} entries`, s.maxProperties + 1);
          putEntries(`exactly ${s.maxProperties} entries`, s.maxProperties);
        }
        if (s.propertyNames !== undefined) {
          const badKey = ['a b', '!', '', ' x', '~', '\u00e9'].find((k) => !this.isValid(s.propertyNames, k));
          if (badKey !== undefined) put(`a key that breaks propertyNames (${JSON.stringify(badKey)})`, { ...here, [badKey]: entry });
        }
        const firstKey = Object.keys(here).find((k) => !(s.properties && k in s.properties));
        if (firstKey !== undefined) this.walk(s.additionalProperties, [...at, firstKey], base, seed, out, unhandled, union);
      }
      for (const [name, prop] of Object.entries((s.properties ?? {}) as Record<string, Schema>)) {
        // A text or number field the document describes only in words is not in the base: its bounds are tested all the same.
        const scalar = typesOf(this.deref(prop)).some((t) => ['string', 'integer', 'number'].includes(t));
        if (name in here || scalar) this.walk(prop, [...at, name], base, seed, out, unhandled, union);
      }
    }
    for (const keyword of Object.keys(s)) {
      if (!handled.has(keyword) && !ANNOTATIONS.has(keyword) && !keyword.startsWith('x-')) unhandled.push(`${keyword} at ${where}`);
    }
  }

  /** The first of a few values of `arb` that passes `accept`; undefined when none does. */
  private sampleWhere(arb: fc.Arbitrary<unknown> | null, accept: (v: unknown) => boolean, seed: number): unknown {
    return arb ? fc.sample(arb, { numRuns: 200, seed }).find(accept) : undefined;
  }

  /** The shortest value of a schema: required fields only, shortest strings, smallest numbers. */
  private smallest(schema: Schema | boolean | undefined, seed: number): unknown {
    const s = this.deref(schema);
    if (s.anyOf || s.oneOf) return this.smallest((s.anyOf ?? s.oneOf)[0], seed);
    if (isObject(s.properties) || typesOf(s).includes('object')) {
      const value: Record<string, unknown> = {};
      for (const name of s.required ?? []) value[name] = this.smallest(s.properties?.[name], seed);
      if (this.isValid(s, value)) return value;
    }
    const arb = this.arbitrary(s);
    if (!arb) return undefined;
    const samples = fc.sample(arb, { numRuns: 30, seed });
    return samples.sort((a, b) => JSON.stringify(a).length - JSON.stringify(b).length)[0];
  }
}

function placeOf(at: Path): string {
  if (at.length === 0) return 'the request';
  if (at[0] === 'body') return at.length === 1 ? 'the body' : `body ${fieldPath(at.slice(1))}`;
  return at.length === 1 ? `the ${at[0]} parameters` : `${at[0]} parameter ${String(at[1])}${at.length > 2 ? fieldPath(at.slice(2)) : ''}`;
}

/** The field a 400 names for a value at `at`: a parameter by its name, a body field by its path. */
function expectedField(at: Path): string | null {
  if (at[0] === 'body') return at.length > 1 ? fieldPath(at.slice(1)) : null;
  return at.length > 1 ? String(at[1]) : null;
}

function valueAt(value: unknown, at: Path): unknown {
  return at.reduce<unknown>((v, k) => (v !== null && typeof v === 'object' ? (v as Record<string | number, unknown>)[k] : undefined), value);
}

function setAt(target: unknown, at: Path, value: unknown): unknown {
  if (at.length === 0) return value;
  const [head, ...rest] = at;
  const copy = (Array.isArray(target) ? [...target] : { ...(target as object) }) as Record<string | number, unknown>;
  if (rest.length === 0 && value === undefined) delete copy[head];
  else copy[head] = setAt(copy[head], rest, value);
  return copy;
}

function omit(value: Record<string, unknown>, name: string): Record<string, unknown> {
  const { [name]: _, ...rest } = value;
  return rest;
}

const within = (inner: string, outer: string) => inner === outer || inner.startsWith(`${outer}.`) || inner.startsWith(`${outer}[`);

/** Whether a 400's field violations name the case's field, something inside it, or (in a union) the union on the way to it. */
export function namesField(violations: { field: string }[], c: Pick<Case, 'field' | 'union'>): boolean {
  const { field, union } = c;
  if (field === null) return true;
  return violations.some((v) => within(v.field, field) || (union !== undefined && within(field, v.field) && (union === null || within(v.field, union))));
}
