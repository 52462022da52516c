import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import fc from 'fast-check';

/**
 * Hostile input for the fuzz tests: wrong types, huge and deeply nested values, unicode, keys that
 * pollute prototypes, strings built to inject SQL or templates.
 */

export const injectionStrings = [
  "'; DROP TABLE devices; --",
  '" OR 1=1 --',
  "serial='x' OR '1'='1'",
  '1; SELECT pg_sleep(10)',
  "$$; DELETE FROM domain_events; $$",
  '\\x00',
  '\u0000',
  '\u202eevil',
  '💥🤖',
  'ＡＢＣ１２３',
  'e\u0301',
  '\ud83d',
  '__proto__',
  'constructor',
  'prototype',
  '../../etc/passwd',
  '%00%ff',
  '{{7*7}}',
  '${jndi:ldap://x/a}',
  '<script>alert(1)</script>',
  'NaN',
  'Infinity',
  '-0',
  '',
  ' ',
  'a'.repeat(300),
];

export const hostileString: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom(...injectionStrings),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 20 }),
  fc.string({ unit: 'binary-ascii', maxLength: 40 }),
);

export const hostileKey: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom('__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'valueOf', '__defineGetter__'),
  hostileString,
);

export const hostileScalar: fc.Arbitrary<unknown> = fc.oneof(
  hostileString,
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.constantFrom(1e308, -1e308, 2 ** 53 + 2, -1, 0, 0.5, 1e-320, 8_640_000_000_000_001),
);

/** Stands for a deeply nested array spliced into the JSON text (JSON.stringify itself would overflow its stack). */
export class Deep {
  constructor(readonly depth: number) {}
  text(): string {
    return `${'['.repeat(this.depth)}${']'.repeat(this.depth)}`;
  }
}

/** An object whose own `__proto__` (or `constructor.prototype`) would pollute Object.prototype if merged naively. */
export const pollutingObject: fc.Arbitrary<Record<string, unknown>> = fc.constantFrom(
  JSON.parse('{"__proto__": {"polluted": "yes"}}'),
  JSON.parse('{"constructor": {"prototype": {"polluted": "yes"}}}'),
  JSON.parse('{"__proto__": {"toString": "polluted"}, "a": 1}'),
);

export const hostileValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: hostileScalar },
  fc.array(hostileScalar, { maxLength: 20 }),
  fc.integer({ min: 17, max: 6000 }).map((n) => Array.from({ length: n }, (_, i) => i % 7)),
  fc.dictionary(hostileKey, hostileScalar, { maxKeys: 10 }),
  fc.integer({ min: 100, max: 30_000 }).map((depth) => new Deep(depth)),
  pollutingObject,
  fc.jsonValue({ maxDepth: 4 }),
);

/** JSON text of a value that may hold `Deep` markers anywhere. */
export function hostileJson(value: unknown): string {
  const deep: Deep[] = [];
  const text = JSON.stringify(value, (_key, v: unknown) => {
    if (v instanceof Deep) {
      deep.push(v);
      return `\u0000deep${deep.length - 1}\u0000`;
    }
    return v;
  });
  return (text ?? 'null').replace(/"\\u0000deep(\d+)\\u0000"/g, (_m, i: string) => deep[Number(i)].text());
}

/** A copy of `target` with the value at `path` replaced (arrays and objects created as needed). */
export function setAt(target: unknown, path: (string | number)[], value: unknown): unknown {
  if (path.length === 0) return value;
  const [head, ...rest] = path;
  const base = target !== null && typeof target === 'object' ? target : typeof head === 'number' ? [] : {};
  const copy = (Array.isArray(base) ? [...base] : { ...(base as object) }) as Record<string | number, unknown>;
  // defineProperty, so a "__proto__" segment becomes an own key as JSON.parse would make it.
  Object.defineProperty(copy, head, {
    value: setAt((base as Record<string | number, unknown>)[head], rest, value),
    enumerable: true,
    writable: true,
    configurable: true,
  });
  return copy;
}

/** Object.prototype's own keys and their values, to compare before and after. */
export function prototypeSnapshot(): string {
  return JSON.stringify(Object.getOwnPropertyNames(Object.prototype).sort()) + String(({} as Record<string, unknown>).polluted);
}

/** The heap after a full collection, where the process allows one (--expose-gc is set from code). */
export function heapUsedAfterGc(): number {
  collectGarbage();
  return process.memoryUsage().heapUsed;
}

let gc: (() => void) | undefined;

function collectGarbage(): void {
  if (!gc) {
    setFlagsFromString('--expose-gc');
    gc = runInNewContext('gc') as () => void;
  }
  gc();
}

/**
 * The field path a rejection message starts with (`events.0.pin: …`, odd keys quoted:
 * `components[":"].code: …`), read independently of domain/field-path.ts so the tests check its format.
 */
export function namedField(message: string): string | undefined {
  return /^(\(root\)|[A-Za-z_][\w-]*(?:\.[\w.-]+|\["(?:[^"\\]|\\.)*"\])*): ./s.exec(message)?.[1];
}

/** The top-level input a field path starts with: `components["a b"].code` -> `components`. */
export const topField = (path: string | undefined) => path?.split(/[.[]/)[0];
