/** Small filesystem primitives every store needs, in one place. */
import { open } from 'node:fs/promises';

/** True when `err`, or an error it wraps, is a Node system error with one of the given codes (ENOENT, EEXIST, ENOSPC...). */
export function hasErrno(err: unknown, ...codes: string[]): boolean {
  for (let e = err, depth = 0; e !== null && typeof e === 'object' && depth < 8; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && codes.includes(code)) return true;
  }
  return false;
}

/** Flushes a directory's entries (a rename into it) to disk. */
export async function syncDir(path: string): Promise<void> {
  const fh = await open(path, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
