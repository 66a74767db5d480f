import { Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { errdefOf, wireMessageOf, type Errdef } from '@berth/core';

/**
 * The only place where error classes meet wire codes. A missing errdef here fails to compile. The fine-grained
 * errdef also travels in trailing metadata (`berth-errdef`) so Berth's own client rebuilds the exact class.
 */
export const ERRDEF_TO_STATUS: Readonly<Record<Errdef, status>> = {
  unknown: status.UNKNOWN,
  'invalid-argument': status.INVALID_ARGUMENT,
  'not-found': status.NOT_FOUND,
  'already-exists': status.ALREADY_EXISTS,
  'failed-precondition': status.FAILED_PRECONDITION,
  conflict: status.FAILED_PRECONDITION,
  'not-modified': status.FAILED_PRECONDITION,
  aborted: status.ABORTED,
  'out-of-range': status.OUT_OF_RANGE,
  'not-implemented': status.UNIMPLEMENTED,
  unavailable: status.UNAVAILABLE,
  'resource-exhausted': status.RESOURCE_EXHAUSTED,
  'permission-denied': status.PERMISSION_DENIED,
  unauthenticated: status.UNAUTHENTICATED,
  'data-loss': status.DATA_LOSS,
  internal: status.INTERNAL,
  cancelled: status.CANCELLED,
  'deadline-exceeded': status.DEADLINE_EXCEEDED,
};

export const ERRDEF_METADATA_KEY = 'berth-errdef';

export interface WireStatus {
  readonly code: status;
  readonly message: string;
  readonly errdef: Errdef;
}

export function toWireStatus(err: unknown): WireStatus {
  const errdef = errdefOf(err);
  return { code: ERRDEF_TO_STATUS[errdef], message: wireMessageOf(err), errdef };
}

/** The grpc-js error object for a thrown error. */
export function toServiceError(err: unknown): Partial<ServiceError> {
  const wire = toWireStatus(err);
  const metadata = new Metadata();
  metadata.set(ERRDEF_METADATA_KEY, wire.errdef);
  return { code: wire.code, details: wire.message, message: wire.message, metadata };
}
