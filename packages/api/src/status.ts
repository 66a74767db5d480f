// gRPC status codes, an error that carries one (google.rpc.Status on the wire), and the one pair of tables between
// core's error classes and the codes: the daemon's gRPC and ttrpc servers, berth's client and the runtime's shim
// client all map through them (a shim's NotFound becomes NotFoundError without grpc-js).
import type { Errdef } from '@berth/core';
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

/** The code each error class travels as. A class missing here fails to compile. */
export const ERRDEF_TO_STATUS: Readonly<Record<Errdef, StatusCodeValue>> = {
  unknown: StatusCode.UNKNOWN,
  'invalid-argument': StatusCode.INVALID_ARGUMENT,
  'not-found': StatusCode.NOT_FOUND,
  'already-exists': StatusCode.ALREADY_EXISTS,
  'failed-precondition': StatusCode.FAILED_PRECONDITION,
  conflict: StatusCode.FAILED_PRECONDITION,
  'not-modified': StatusCode.FAILED_PRECONDITION,
  aborted: StatusCode.ABORTED,
  'out-of-range': StatusCode.OUT_OF_RANGE,
  'not-implemented': StatusCode.UNIMPLEMENTED,
  unavailable: StatusCode.UNAVAILABLE,
  'resource-exhausted': StatusCode.RESOURCE_EXHAUSTED,
  'permission-denied': StatusCode.PERMISSION_DENIED,
  unauthenticated: StatusCode.UNAUTHENTICATED,
  'data-loss': StatusCode.DATA_LOSS,
  internal: StatusCode.INTERNAL,
  cancelled: StatusCode.CANCELLED,
  'deadline-exceeded': StatusCode.DEADLINE_EXCEEDED,
};

/** The class a code stands for when the peer did not say which (containerd's FromGRPC, extended to every code). */
export const STATUS_TO_ERRDEF: Readonly<Record<number, Errdef>> = {
  [StatusCode.CANCELLED]: 'cancelled',
  [StatusCode.UNKNOWN]: 'unknown',
  [StatusCode.INVALID_ARGUMENT]: 'invalid-argument',
  [StatusCode.DEADLINE_EXCEEDED]: 'deadline-exceeded',
  [StatusCode.NOT_FOUND]: 'not-found',
  [StatusCode.ALREADY_EXISTS]: 'already-exists',
  [StatusCode.PERMISSION_DENIED]: 'permission-denied',
  [StatusCode.RESOURCE_EXHAUSTED]: 'resource-exhausted',
  [StatusCode.FAILED_PRECONDITION]: 'failed-precondition',
  [StatusCode.ABORTED]: 'aborted',
  [StatusCode.OUT_OF_RANGE]: 'out-of-range',
  [StatusCode.UNIMPLEMENTED]: 'not-implemented',
  [StatusCode.INTERNAL]: 'internal',
  [StatusCode.UNAVAILABLE]: 'unavailable',
  [StatusCode.DATA_LOSS]: 'data-loss',
  [StatusCode.UNAUTHENTICATED]: 'unauthenticated',
};

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
