import type { ErrorRequestHandler, RequestHandler } from 'express';
import type { Logger } from 'pino';
import type { z } from 'zod';

/** The contract's error shape, `{ error: { code, message, details? } }`; never a stack trace. */

export type ErrorCode =
  | 'INVALID_ARGUMENT'
  | 'UNAUTHENTICATED'
  | 'PERMISSION_DENIED'
  | 'NOT_FOUND'
  | 'ALREADY_EXISTS'
  | 'RESOURCE_EXHAUSTED'
  | 'UNAVAILABLE'
  | 'INTERNAL';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: ErrorCode,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
  }
}

export type FieldViolation = { field: string; description: string };

export const invalidArgument = (field: string, problem: string, violations?: FieldViolation[]) =>
  new ApiError(400, 'INVALID_ARGUMENT', `${field}: ${problem}`, {
    fieldViolations: violations ?? [{ field, description: problem }],
  });
export const unauthenticated = (message: string) => new ApiError(401, 'UNAUTHENTICATED', message);
export const permissionDenied = (message: string) => new ApiError(403, 'PERMISSION_DENIED', message);
export const notFound = (message: string) => new ApiError(404, 'NOT_FOUND', message);
export const unavailable = (message: string, details?: unknown) => new ApiError(503, 'UNAVAILABLE', message, details);

/** Parses request input with a zod schema; a failure is a 400 naming the first offending field. */
export function parseInput<S extends z.ZodType>(schema: S, input: unknown): z.output<S> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const violations = result.error.issues.map((i) => ({ field: fieldPath(i.path), description: i.message }));
  throw invalidArgument(violations[0].field, violations[0].description, violations);
}

const fieldPath = (path: PropertyKey[]) => path.map(String).join('.') || '(root)';

export const routeNotFound: RequestHandler = (req) => {
  throw notFound(`no route for ${req.method} ${req.path}`);
};

export function errorHandler(logger: Logger): ErrorRequestHandler {
  return (err, req, res, next) => {
    if (res.headersSent) return next(err);
    const apiError = toApiError(err);
    if (apiError.code === 'INTERNAL') logger.error({ err, method: req.method, url: req.originalUrl }, 'request failed');
    const { code, message, details } = apiError;
    res.status(apiError.status).json({ error: details === undefined ? { code, message } : { code, message, details } });
  };
}

type BodyParserError = { type?: string; status?: number; expose?: boolean };

function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  const bodyError = err as BodyParserError;
  if (bodyError?.type === 'entity.too.large') return invalidArgument('body', 'larger than the 100kb limit');
  if (bodyError?.type === 'entity.parse.failed') return invalidArgument('body', 'not valid JSON');
  if (bodyError?.expose && bodyError.status && bodyError.status < 500) return invalidArgument('body', 'cannot be read');
  return new ApiError(500, 'INTERNAL', 'internal error');
}
