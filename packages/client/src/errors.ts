// The client side of the wire error round trip (containerd's errdefs.FromGRPC): a grpc-js ServiceError becomes the
// core errdef class, so callers test errors with isNotFound() & co. and never look at gRPC codes.
import type { ServiceError } from '@grpc/grpc-js';
import { STATUS_TO_ERRDEF } from '@berth/api';
import { ERRDEF_METADATA_KEY, ERRDEF_SUFFIX, errorFromErrdef, isErrdef, type BerthError, type Errdef } from '@berth/core';

/** Structural test for the error objects grpc-js hands to callbacks and stream 'error' events. */
export function isServiceError(err: unknown): err is ServiceError {
  return (
    err instanceof Error &&
    typeof (err as Partial<ServiceError>).code === 'number' &&
    typeof (err as Partial<ServiceError>).details === 'string'
  );
}

function errdefOfServiceError(err: ServiceError): Errdef {
  const values = err.metadata?.get(ERRDEF_METADATA_KEY) ?? [];
  const sent = values.length > 0 ? String(values[0]) : undefined;
  if (sent !== undefined && isErrdef(sent)) return sent;
  return STATUS_TO_ERRDEF[err.code] ?? 'unknown';
}

/** Removes the class suffix from the end of a wire message (`x: not found` -> `x`; `not found` -> ``). */
export function rebaseMessage(errdef: Errdef, message: string): string {
  const suffix = ERRDEF_SUFFIX[errdef];
  if (!suffix) return message;
  if (message === suffix) return '';
  return message.endsWith(`: ${suffix}`) ? message.slice(0, -(suffix.length + 2)) : message;
}

/**
 * Maps a grpc-js ServiceError to the core errdef class: the class named in the `berth-errdef` trailer when the
 * server sent one (berthd does), else the class of the gRPC code. The message is the status details without the
 * class suffix; the original error is the `cause`. Anything that is not a ServiceError is returned unchanged.
 */
export function fromGrpc(err: unknown): unknown {
  if (!isServiceError(err)) return err;
  const errdef = errdefOfServiceError(err);
  const rebuilt: BerthError = errorFromErrdef(errdef, rebaseMessage(errdef, err.details));
  rebuilt.cause = err;
  return rebuilt;
}
