import type { ErrorRequestHandler, RequestHandler } from 'express';
import type { Logger } from 'pino';
import type { z } from 'zod';
import { fieldPath, pathToNul } from '../domain/field-path';

/** The contract's error shape, `{ error: { code, message, details? } }`; never a stack trace. */

export type ErrorCode =
  | 'INVALID_ARGUMENT'
  | 'PAYLOAD_TOO_LARGE'
  | 'UNAUTHENTICATED'
  | 'PERMISSION_DENIED'
  | 'NOT_FOUND'
  | 'METHOD_NOT_ALLOWED'
  | 'ALREADY_EXISTS'
  | 'FAILED_PRECONDITION'
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
export const payloadTooLarge = (limit: number) =>
  new ApiError(413, 'PAYLOAD_TOO_LARGE', `body: larger than the ${limit}-byte limit`, { fieldViolations: [{ field: 'body', description: `larger than the ${limit}-byte limit` }] });
export const unauthenticated = (message: string) => new ApiError(401, 'UNAUTHENTICATED', message);
export const permissionDenied = (message: string) => new ApiError(403, 'PERMISSION_DENIED', message);
export const notFound = (message: string) => new ApiError(404, 'NOT_FOUND', message);
export const failedPrecondition = (message: string) => new ApiError(409, 'FAILED_PRECONDITION', message);
export const unavailable = (message: string, details?: unknown) => new ApiError(503, 'UNAVAILABLE', message, details);

/** Parses request input with a zod schema; a failure is a 400 naming the first offending field. */
export function parseInput<S extends z.ZodType>(schema: S, input: unknown): z.output<S> {
  const result = schema.safeParse(input);
  if (result.success) {
    // PostgreSQL text cannot hold NUL: refused here, naming the field, rather than failing a write later.
    const nul = pathToNul(result.data);
    if (nul) throw invalidArgument(fieldPath(nul), 'must not contain NUL (\\u0000) characters');
    return result.data;
  }
  const violations = result.error.issues.map((i) => ({ field: fieldPath(i.path), description: i.message }));
  throw invalidArgument(violations[0].field, violations[0].description, violations);
}

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

type BodyParserError = { type?: string; status?: number; expose?: boolean; limit?: number };

function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  const bodyError = err as BodyParserError;
  // Each route's own limit: 100 kb of JSON, 16 KiB for the DriveU webhook's raw body.
  if (bodyError?.type === 'entity.too.large') return payloadTooLarge(bodyError.limit ?? 102_400);
  if (bodyError?.type === 'entity.parse.failed') return invalidArgument('body', 'not valid JSON');
  if (bodyError?.expose && bodyError.status && bodyError.status < 500) return invalidArgument('body', 'cannot be read');
  // The router could not decode a path parameter (%C0%AE, %E0%A4%A): the client's mistake, not ours.
  if (err instanceof URIError) return invalidArgument('path', 'is not valid percent-encoded UTF-8');
  const down = unreachableDependency(err);
  if (down) return unavailable(`${down} is unavailable; retry shortly`);
  return new ApiError(500, 'INTERNAL', 'internal error');
}

// Prisma's codes for "cannot reach / lost / timed out on the database", and the driver adapter's kinds.
const DATABASE_DOWN_CODES = new Set(['P1001', 'P1002', 'P1008', 'P1017', 'P2024']);
const DATABASE_DOWN_KINDS = new Set(['DatabaseNotReachable', 'ConnectionClosed', 'SocketTimeout', 'TooManyConnections']);
const SOCKET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE']);
// gRPC UNAVAILABLE and DEADLINE_EXCEEDED; @grpc/grpc-js is not a direct dependency.
const GRPC_DOWN_CODES = new Set([14, 4]);

type ErrorLike = { name?: string; code?: unknown; message?: unknown; cause?: unknown; meta?: { driverAdapterError?: { cause?: { kind?: string; code?: string } } } };

/**
 * A dependency that cannot be reached is a 503 (retry later), not a 500: PostgreSQL down,
 * restarting or out of connections (Prisma's errors, or the pg driver's underneath), and Temporal
 * not answering (gRPC UNAVAILABLE or a deadline), looked for along the error's causes.
 */
function unreachableDependency(err: unknown): string | null {
  for (let e = err as ErrorLike | undefined, depth = 0; e && typeof e === 'object' && depth < 5; e = e.cause as ErrorLike | undefined, depth++) {
    const adapter = e.meta?.driverAdapterError?.cause;
    if (typeof e.code === 'string' && DATABASE_DOWN_CODES.has(e.code)) return 'the database';
    if (adapter?.kind && DATABASE_DOWN_KINDS.has(adapter.kind)) return 'the database';
    // 57P0x: the server is shutting down or starting up; 08xxx: connection exceptions.
    const sqlState = adapter?.kind === 'postgres' ? adapter.code : typeof e.code === 'string' ? e.code : undefined;
    if (sqlState && /^(57P0[1-3]|08\w{3})$/.test(sqlState)) return 'the database';
    if (e.name === 'PrismaClientInitializationError') return 'the database';
    if (typeof e.message === 'string' && /Connection terminated|connection error|Can't reach database/i.test(e.message)) return 'the database';
    if (typeof e.code === 'number' && GRPC_DOWN_CODES.has(e.code) && 'details' in e) return 'Temporal';
    if (e.name === 'TransportError') return 'Temporal';
    if (typeof e.code === 'string' && SOCKET_CODES.has(e.code)) return 'a backing service';
  }
  return null;
}
