import { constants } from 'node:os';
import { getSystemErrorMap } from 'node:util';

/** A failed system call, shaped like Node's fs errors: `code` is the errno name, `errno` is negative. */
export interface SysError extends Error {
  readonly code: string;
  readonly errno: number;
  readonly syscall: string;
  readonly path?: string;
  readonly dest?: string;
}

// Where libuv's description is wrong for these calls (it describes ENOTSUP for sockets) or libuv has no entry.
const DESCRIPTIONS: Readonly<Record<number, readonly [string, string]>> = {
  15: ['ENOTBLK', 'block device required'],
  95: ['ENOTSUP', 'operation not supported'],
  117: ['EUCLEAN', 'structure needs cleaning'],
};

let names: Map<number, string> | undefined;

/** Name and description of a (positive) Linux errno. */
export function describeErrno(errno: number): readonly [string, string] {
  const known = DESCRIPTIONS[errno] ?? getSystemErrorMap().get(-errno);
  if (known) return known;
  names ??= new Map(Object.entries(constants.errno).map(([name, n]) => [n, name]));
  return [names.get(errno) ?? 'UNKNOWN', `errno ${errno}`];
}

/** Builds the error for `errno` (positive) from `syscall` on `path` (and `dest`), as fs does: `EPERM: operation not permitted, mount 'a' -> 'b'`. */
export function errnoError(errno: number, syscall: string, path?: string, dest?: string): SysError {
  const [code, description] = describeErrno(errno);
  return sysError(code, -errno, description, syscall, path, dest);
}

/** The same shape for a failure whose errno is unknown (a fallback tool that said something unrecognised). */
export function unknownSysError(syscall: string, path?: string, dest?: string): SysError {
  return sysError('UNKNOWN', -4094 /* libuv's UV_UNKNOWN */, 'unknown error', syscall, path, dest);
}

function sysError(code: string, errno: number, description: string, syscall: string, path?: string, dest?: string): SysError {
  let message = `${code}: ${description}, ${syscall}`;
  if (path !== undefined) message += ` '${path}'`;
  if (dest !== undefined) message += ` -> '${dest}'`;
  const err = new Error(message) as Error & { code: string; errno: number; syscall: string; path?: string; dest?: string };
  err.code = code;
  err.errno = errno;
  err.syscall = syscall;
  if (path !== undefined) err.path = path;
  if (dest !== undefined) err.dest = dest;
  Error.captureStackTrace(err, sysError);
  return err;
}

/**
 * The error for a call that has neither a working binding nor a fallback. `code` is ENOSYS; `errdef` makes
 * @berth/core's predicates (isNotImplemented) and the daemon's status mapping classify it without importing core.
 */
export function notImplemented(syscall: string, reason: string): SysError & { readonly errdef: 'not-implemented' } {
  const err = errnoError(38, syscall) as SysError & { errdef: 'not-implemented'; message: string };
  err.message = `${syscall}: not implemented: ${reason}`;
  err.errdef = 'not-implemented';
  return err;
}
