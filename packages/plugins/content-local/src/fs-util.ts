import { readFile } from 'node:fs/promises';
import { hasErrno } from '@berth/core';

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
