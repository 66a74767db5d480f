/** Small filesystem primitives every store needs, in one place. */
import { open } from 'node:fs/promises';

/** True when `err` is a Node system error with one of the given codes (ENOENT, EEXIST, ENOSPC...). */
export function hasErrno(err: unknown, ...codes: string[]): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && codes.includes(code);
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
