import { open, readFile } from 'node:fs/promises';

/** True when `err`, or an error it wraps, is a Node system error with one of the given codes (ENOENT, EEXIST, ...). */
export function hasErrno(err: unknown, ...codes: string[]): boolean {
  for (let e = err, depth = 0; e !== null && typeof e === 'object' && depth < 8; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && codes.includes(code)) return true;
  }
  return false;
}

// One atomic file write for every plugin (the introspection UUID too); re-exported for this package's modules.
export { TMP_SUFFIX, writeFileAtomic } from '@berth/core';

/** Flushes a directory's entries (a rename into it) to disk. */
export async function syncDir(path: string): Promise<void> {
  const fh = await open(path, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** The file's text, or undefined when it does not exist. */
export async function readTextIfExists(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if (hasErrno(err, 'ENOENT')) return undefined;
    throw err;
  }
}

/** RFC 3339 text as stored in `startedat`/`updatedat`. */
export function formatTimestamp(date: Date): string {
  return date.toISOString();
}

/**
 * Parses RFC 3339 text, including Go's nanosecond form (`2026-11-28T17:37:30.321868259Z`, as containerd writes it).
 * Returns undefined for anything unreadable.
 */
export function parseTimestamp(text: string | undefined): Date | undefined {
  if (text === undefined) return undefined;
  const trimmed = text.trim().replace(/(\.\d{3})\d+/, '$1');
  const ms = Date.parse(trimmed);
  return Number.isNaN(ms) ? undefined : new Date(ms);
}
