import { z } from 'zod';

/** An enum that takes `VALUE` or the seed protos' `PREFIX_VALUE` and yields `VALUE`; the document lists both. */
export function seedEnum<const T extends readonly [string, ...string[]]>(values: T, prefix: string) {
  const accepted = [...values, ...values.map((v) => `${prefix}${v}`)] as [string, ...string[]];
  return z.enum(accepted).transform((v) => (v.startsWith(prefix) ? v.slice(prefix.length) : v) as T[number]);
}
