import { UnknownError } from './errdefs.js';

/** The fields Node puts on an error from a system call (fs, net): `ENOSPC`, `write`, the path(s) involved. */
export interface SystemErrorLike extends Error {
  readonly code: string;
  readonly errno: number;
  readonly syscall: string;
  readonly path?: string;
  readonly dest?: string;
}

export function isSystemError(err: unknown): err is SystemErrorLike {
  if (!(err instanceof Error)) return false;
  const e = err as Partial<SystemErrorLike>;
  return typeof e.code === 'string' && /^E[A-Z0-9]+$/.test(e.code) && typeof e.errno === 'number' && typeof e.syscall === 'string';
}

/** A full filesystem (or quota): containerd passes these on as Unknown with Go's text, and so does Berth. */
export function isNoSpace(err: unknown): boolean {
  const seen = new Set<unknown>();
  for (let e: unknown = err; e !== null && typeof e === 'object' && !seen.has(e); e = (e as { cause?: unknown }).cause) {
    seen.add(e);
    const code = (e as { code?: unknown }).code;
    if (code === 'ENOSPC' || code === 'EDQUOT') return true;
  }
  return false;
}

/**
 * A system error in the words of Go's os.PathError, which is what containerd answers: `<op> <path>: <description>`
 * (`write /var/lib/x/data: no space left on device`), where Node says `ENOSPC: no space left on device, write`.
 * `op` and `path` fill in what Node leaves out (a write through a file handle names no path).
 */
export function describeSystemError(err: SystemErrorLike, op?: string, path?: string): string {
  // Node: `<CODE>: <description>, <syscall>[ '<path>'][ -> '<dest>']`.
  const prefix = `${err.code}: `;
  let description = err.message.startsWith(prefix) ? err.message.slice(prefix.length) : err.code;
  const tail = description.lastIndexOf(`, ${err.syscall}`);
  if (tail >= 0) description = description.slice(0, tail);
  const subject = [op ?? err.syscall, path ?? err.path, path === undefined ? err.dest : undefined].filter(Boolean).join(' ');
  return `${subject}: ${description}`;
}

/**
 * `err` as an errdef for the caller: a system error becomes UnknownError (containerd's class for unclassified
 * errors) with Go's wording and the original as its cause; anything else is returned unchanged.
 */
export function fromSystemError(err: unknown, op?: string, path?: string): unknown {
  if (!isSystemError(err)) return err;
  return new UnknownError(describeSystemError(err, op, path), { cause: err });
}
