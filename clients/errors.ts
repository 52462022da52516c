import { isGrpcServiceError, ServiceError, WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError } from '@temporalio/client';

/** What callers need to tell apart in Temporal's answers, without importing the client library. */

// gRPC status NOT_FOUND; @grpc/grpc-js is not a direct dependency.
const GRPC_NOT_FOUND = 5;

/** No such workflow (or a query to one that does not exist). */
export function isWorkflowNotFound(error: unknown): boolean {
  if (error instanceof WorkflowNotFoundError) return true;
  const cause = error instanceof ServiceError ? error.cause : error;
  return isGrpcServiceError(cause) && cause.code === GRPC_NOT_FOUND;
}

export const isAlreadyStarted = (error: unknown) => error instanceof WorkflowExecutionAlreadyStartedError;
