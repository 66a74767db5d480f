import { Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { ERRDEF_TO_STATUS } from '@berth/api';
import { ERRDEF_METADATA_KEY, errdefOf, wireMessageOf, type Errdef } from '@berth/core';

/**
 * Where error classes meet grpc-js: the table is @berth/api's (one for gRPC, ttrpc and the clients), the codes are the
 * same numbers as grpc-js's. The fine-grained errdef also travels in trailing metadata (`berth-errdef`) so Berth's
 * own client rebuilds the exact class.
 */
export interface WireStatus {
  readonly code: status;
  readonly message: string;
  readonly errdef: Errdef;
}

export function toWireStatus(err: unknown): WireStatus {
  const errdef = errdefOf(err);
  return { code: ERRDEF_TO_STATUS[errdef] as status, message: wireMessageOf(err), errdef };
}

/** The grpc-js error object for a thrown error. */
export function toServiceError(err: unknown): Partial<ServiceError> {
  const wire = toWireStatus(err);
  const metadata = new Metadata();
  metadata.set(ERRDEF_METADATA_KEY, wire.errdef);
  return { code: wire.code, details: wire.message, message: wire.message, metadata };
}
