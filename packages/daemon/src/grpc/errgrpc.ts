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

/**
 * The longest status message sent. A message travels in a trailer, and a client refuses trailers past its header
 * limit (grpc-js: 8 KiB) without telling the caller anything: a request that echoes a megabyte of a bad name into its
 * error would never be answered. The start and the end (the errdef suffix Go clients match) are kept.
 */
export const MAX_WIRE_MESSAGE = 2048;

export function boundMessage(message: string): string {
  if (message.length <= MAX_WIRE_MESSAGE) return message;
  const tail = 256;
  const head = MAX_WIRE_MESSAGE - tail - 40;
  return `${message.slice(0, head)}…(${message.length - head - tail} characters left out)…${message.slice(-tail)}`;
}

export function toWireStatus(err: unknown): WireStatus {
  const errdef = errdefOf(err);
  return { code: ERRDEF_TO_STATUS[errdef] as status, message: boundMessage(wireMessageOf(err)), errdef };
}

/** The grpc-js error object for a thrown error. */
export function toServiceError(err: unknown): Partial<ServiceError> {
  const wire = toWireStatus(err);
  const metadata = new Metadata();
  metadata.set(ERRDEF_METADATA_KEY, wire.errdef);
  return { code: wire.code, details: wire.message, message: wire.message, metadata };
}
