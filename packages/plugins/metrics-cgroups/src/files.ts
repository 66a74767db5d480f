// Reading cgroup files: asynchronously (a scrape never holds the event loop on a slow or stuck file), with a
// missing file told apart from an unreadable one, and numbers parsed as the kernel writes them: unsigned 64-bit
// decimals, kept exact as bigint (memory limits are near 2^63, `max` is 2^64 - 1 in containerd's encoding).
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';

/** uint64's maximum: what containerd reports for a v2 file that says `max`. */
export const U64_MAX = (1n << 64n) - 1n;

/** The file's text, or undefined when it (or its directory) does not exist; other errors propagate. */
export async function readOptional(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if (isMissing(err)) return undefined;
    throw err;
  }
}

/** Entry names of a directory, [] when it does not exist. */
export async function listOptional(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (err) {
    if (isMissing(err)) return [];
    throw err;
  }
}

export function isMissing(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  // ENODEV: a cgroup file of a controller the kernel has but this cgroup lost (a removed cgroup being read).
  return code === 'ENOENT' || code === 'ENOTDIR' || code === 'ENODEV' || code === 'ESRCH';
}

/**
 * An unsigned decimal as containerd's parseUint reads it: negative values (v1's `-1` for "no limit" on some
 * kernels) are 0, values past 2^64 - 1 are clamped; anything else that is not a number is undefined.
 */
export function parseU64(text: string | undefined): bigint | undefined {
  const s = text?.trim();
  if (!s) return undefined;
  if (/^-\d+$/.test(s)) return 0n;
  if (!/^\d+$/.test(s)) return undefined;
  const v = BigInt(s);
  return v > U64_MAX ? U64_MAX : v;
}

/** A v2 single-value file: `max` is uint64's maximum, as containerd's getStatFileContentUint64 has it. */
export function parseU64OrMax(text: string | undefined): bigint | undefined {
  return text?.trim() === 'max' ? U64_MAX : parseU64(text);
}

/** `key value` lines (memory.stat, cpu.stat, memory.events); lines that are not that shape are skipped. */
export function parseKeyValues(text: string | undefined): Map<string, bigint> {
  const out = new Map<string, bigint>();
  for (const line of (text ?? '').split('\n')) {
    const fields = line.trim().split(/\s+/);
    if (fields.length !== 2) continue;
    const v = parseU64(fields[1]);
    if (v !== undefined) out.set(fields[0]!, v);
  }
  return out;
}

/** Reads `dir/name` as one unsigned number (undefined when missing or not a number). */
export async function readU64(dir: string, name: string): Promise<bigint | undefined> {
  return parseU64(await readOptional(join(dir, name)));
}
