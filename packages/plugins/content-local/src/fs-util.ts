import { randomBytes } from 'node:crypto';
import { open, readFile, rename, rm } from 'node:fs/promises';

/** True when `err` is a Node system error with one of the given codes (ENOENT, EEXIST, ...). */
export function hasErrno(err: unknown, ...codes: string[]): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && codes.includes(code);
}

/** Suffix of temporary files; whatever ends with it is debris of an interrupted write and may be removed. */
export const TMP_SUFFIX = '.tmp';

/**
 * Writes a file so that readers see either the old or the new content, never a torn one: a uniquely named
 * temporary file in the same directory, flushed, then renamed over the target.
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array, options: { mode?: number } = {}): Promise<void> {
  const tmp = `${path}.${process.pid}-${randomBytes(4).toString('hex')}${TMP_SUFFIX}`;
  const fh = await open(tmp, 'wx', options.mode ?? 0o644);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } catch (err) {
    await fh.close().catch(() => undefined);
    await rm(tmp, { force: true });
    throw err;
  }
  await fh.close();
  try {
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
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
