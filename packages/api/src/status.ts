// gRPC status codes and an error that carries one (google.rpc.Status on the wire). Mapping a status to an errdef is
// the caller's business (the daemon's errgrpc, or a client's fromStatus hook).
import type { google } from './generated/types.js';

export const StatusCode = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;

export type StatusCodeValue = (typeof StatusCode)[keyof typeof StatusCode];

/** A status as a handler outcome: what an `errorToStatus` function returns. */
export interface RpcStatus {
  readonly code: number;
  readonly message: string;
  readonly details?: readonly google.protobuf.Any[];
}

/** An RPC failed with a non-OK status. `code` is the numeric gRPC code. */
export class RpcStatusError extends Error {
  override readonly name = 'RpcStatusError';
  readonly code: number;
  readonly details: readonly google.protobuf.Any[];

  constructor(status: RpcStatus, options?: { cause?: unknown }) {
    super(status.message, options);
    this.code = status.code;
    this.details = status.details ?? [];
  }
}

/** True for anything carrying a numeric gRPC `code` in 1..16 (RpcStatusError, grpc-js ServiceError, ...). */
export function hasStatusCode(err: unknown): err is { code: number; message?: string } {
  if (typeof err !== 'object' || err === null || !('code' in err)) return false;
  const code = (err as { code: unknown }).code;
  return typeof code === 'number' && Number.isInteger(code) && code >= 1 && code <= 16;
}

/** A fallback errorToStatus: keeps a carried gRPC code, anything else is UNKNOWN with the error's message. */
export function defaultErrorToStatus(err: unknown): RpcStatus {
  const message = err instanceof Error ? err.message : String(err);
  if (hasStatusCode(err)) return { code: err.code, message };
  return { code: StatusCode.UNKNOWN, message };
}
