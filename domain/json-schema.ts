import { z } from 'zod';

/**
 * What zod checks but zod-to-openapi leaves out of the OpenAPI document, declared in JSON Schema's
 * own words as zod itself writes them (`z.toJSONSchema`), so the document cannot drift from the check.
 */

/** The JSON Schema of a zod schema's input, without the `$schema` line. */
export function jsonSchemaOf(schema: z.core.$ZodType): Record<string, unknown> {
  const { $schema: _, ...rest } = z.toJSONSchema(schema, { io: 'input' }) as Record<string, unknown>;
  return rest;
}

/** A record whose key rule is declared as `propertyNames`. */
export const declareKeys = <S extends z.ZodRecord>(record: S): S => record.meta({ propertyNames: jsonSchemaOf(record.keyType) });

/** A uuid or datetime whose regex is declared as `pattern`: zod's is stricter than the format's name (UUID versions 1-8; upper-case T and Z). */
export const declarePattern = <S extends z.ZodType>(schema: S): S => schema.meta({ pattern: jsonSchemaOf(schema).pattern as string });
