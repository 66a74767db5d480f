import { describeSystemError, isSystemError } from './system.js';

/**
 * Classes of error condition, mirroring containerd's errdefs. Plugins throw these; exactly one place (the daemon's
 * errgrpc) maps them to wire codes. Predicates compare the `errdef` string along the cause chain, never `instanceof`,
 * so they work across duplicate copies of core.
 */
export const ERRDEFS = [
  'unknown',
  'invalid-argument',
  'not-found',
  'already-exists',
  'failed-precondition',
  'conflict',
  'not-modified',
  'aborted',
  'out-of-range',
  'not-implemented',
  'unavailable',
  'resource-exhausted',
  'permission-denied',
  'unauthenticated',
  'data-loss',
  'internal',
  'cancelled',
  'deadline-exceeded',
] as const;
export type Errdef = (typeof ERRDEFS)[number];

/** The text containerd appends to messages of each class, so Go clients classify our errors the same way. */
export const ERRDEF_SUFFIX: Readonly<Partial<Record<Errdef, string>>> = {
  'invalid-argument': 'invalid argument',
  'not-found': 'not found',
  'already-exists': 'already exists',
  'failed-precondition': 'failed precondition',
  conflict: 'conflict',
  'not-modified': 'not modified',
  'not-implemented': 'not implemented',
  unavailable: 'unavailable',
};

export abstract class BerthError extends Error {
  abstract readonly errdef: Errdef;
  /** Host/loader errors carry a stable machine-readable code (BERTH_ERR_*); match it, never the message. */
  readonly code?: string;

  constructor(message: string, options?: ErrorOptions & { code?: string }) {
    super(message, options);
    this.name = new.target.name;
    if (options?.code) this.code = options.code;
  }

}

const define = <const E extends Errdef>(errdef: E, name: string) => {
  const cls = class extends BerthError {
    readonly errdef = errdef;
  };
  Object.defineProperty(cls, 'name', { value: name });
  return cls;
};

export class UnknownError extends define('unknown', 'UnknownError') {}
export class InvalidArgumentError extends define('invalid-argument', 'InvalidArgumentError') {}
export class NotFoundError extends define('not-found', 'NotFoundError') {}
export class AlreadyExistsError extends define('already-exists', 'AlreadyExistsError') {}
export class FailedPreconditionError extends define('failed-precondition', 'FailedPreconditionError') {}
export class ConflictError extends define('conflict', 'ConflictError') {}
export class NotModifiedError extends define('not-modified', 'NotModifiedError') {}
export class AbortedError extends define('aborted', 'AbortedError') {}
export class OutOfRangeError extends define('out-of-range', 'OutOfRangeError') {}
export class NotImplementedError extends define('not-implemented', 'NotImplementedError') {}
export class UnavailableError extends define('unavailable', 'UnavailableError') {}
export class ResourceExhaustedError extends define('resource-exhausted', 'ResourceExhaustedError') {}
export class PermissionDeniedError extends define('permission-denied', 'PermissionDeniedError') {}
export class UnauthenticatedError extends define('unauthenticated', 'UnauthenticatedError') {}
export class DataLossError extends define('data-loss', 'DataLossError') {}
export class InternalError extends define('internal', 'InternalError') {}
export class CancelledError extends define('cancelled', 'CancelledError') {}
export class DeadlineExceededError extends define('deadline-exceeded', 'DeadlineExceededError') {}

const CLASSES: Record<Errdef, new (message: string, options?: ErrorOptions) => BerthError> = {
  unknown: UnknownError,
  'invalid-argument': InvalidArgumentError,
  'not-found': NotFoundError,
  'already-exists': AlreadyExistsError,
  'failed-precondition': FailedPreconditionError,
  conflict: ConflictError,
  'not-modified': NotModifiedError,
  aborted: AbortedError,
  'out-of-range': OutOfRangeError,
  'not-implemented': NotImplementedError,
  unavailable: UnavailableError,
  'resource-exhausted': ResourceExhaustedError,
  'permission-denied': PermissionDeniedError,
  unauthenticated: UnauthenticatedError,
  'data-loss': DataLossError,
  internal: InternalError,
  cancelled: CancelledError,
  'deadline-exceeded': DeadlineExceededError,
};

/** Rebuilds the error class named by an errdef string (the client side of the wire round trip). */
export function errorFromErrdef(errdef: string, message: string): BerthError {
  const cls = (CLASSES as Record<string, (typeof CLASSES)[Errdef] | undefined>)[errdef] ?? UnknownError;
  return new cls(message);
}

export function isErrdef(value: string): value is Errdef {
  return (ERRDEFS as readonly string[]).includes(value);
}

/**
 * The errdef of an error: the first one found walking `cause` and `AggregateError.errors`. AbortError and
 * TimeoutError DOMExceptions count as cancelled and deadline-exceeded. Anything else is 'unknown'.
 */
export function errdefOf(err: unknown): Errdef {
  const seen = new Set<unknown>();
  const walk = (e: unknown): Errdef | undefined => {
    if (e === null || typeof e !== 'object' || seen.has(e)) return undefined;
    seen.add(e);
    const def = (e as { errdef?: unknown }).errdef;
    if (typeof def === 'string' && isErrdef(def)) return def;
    const name = (e as { name?: unknown }).name;
    if (name === 'AbortError') return 'cancelled';
    if (name === 'TimeoutError') return 'deadline-exceeded';
    const found = walk((e as { cause?: unknown }).cause);
    if (found) return found;
    const errors = (e as { errors?: unknown }).errors;
    if (Array.isArray(errors)) for (const inner of errors) {
      const d = walk(inner);
      if (d) return d;
    }
    return undefined;
  };
  return walk(err) ?? 'unknown';
}

const is = (def: Errdef) => (err: unknown): boolean => errdefOf(err) === def;
export const isInvalidArgument = is('invalid-argument');
export const isNotFound = is('not-found');
export const isAlreadyExists = is('already-exists');
export const isFailedPrecondition = is('failed-precondition');
export const isConflict = is('conflict');
export const isNotModified = is('not-modified');
export const isAborted = is('aborted');
export const isOutOfRange = is('out-of-range');
export const isNotImplemented = is('not-implemented');
export const isUnavailable = is('unavailable');
export const isResourceExhausted = is('resource-exhausted');
export const isDataLoss = is('data-loss');
export const isInternal = is('internal');
export const isCancelled = is('cancelled');
export const isDeadlineExceeded = is('deadline-exceeded');
export const isUnknown = is('unknown');

/**
 * The message to put on the wire, ending with containerd's suffix for its class (`…: not found`). A bare system
 * error is worded as Go words it (`write /x: no space left on device`), as containerd passes those on.
 */
export function wireMessageOf(err: unknown): string {
  const message = isSystemError(err) ? describeSystemError(err) : err instanceof Error ? err.message : String(err);
  const suffix = ERRDEF_SUFFIX[errdefOf(err)];
  if (!suffix || message === suffix || message.endsWith(`: ${suffix}`)) return message;
  return message ? `${message}: ${suffix}` : suffix;
}
