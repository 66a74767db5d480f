import { randomBytes } from 'node:crypto';
import { open, rename, rm } from 'node:fs/promises';
import { fromSystemError } from '../errdefs/system.js';

/** Suffix of temporary files; whatever ends with it is debris of an interrupted write and may be removed. */
export const TMP_SUFFIX = '.tmp';

/**
 * Writes a file so that readers see either the old or the new content, never a torn one: a uniquely named
 * temporary file in the same directory, flushed, then renamed over the target. On failure (a full disk) the
 * temporary file is removed, the target is untouched, and the error names the target
 * (`write <path>: no space left on device`, the system error as its cause).
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array, options: { mode?: number } = {}): Promise<void> {
  const tmp = `${path}.${process.pid}-${randomBytes(4).toString('hex')}${TMP_SUFFIX}`;
  const fh = await open(tmp, 'wx', options.mode ?? 0o644).catch((err: unknown) => {
    throw fromSystemError(err, 'open', path);
  });
  try {
    await fh.writeFile(data);
    await fh.sync();
    await fh.close();
  } catch (err) {
    await fh.close().catch(() => undefined);
    await rm(tmp, { force: true });
    throw fromSystemError(err, 'write', path);
  }
  try {
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw fromSystemError(err, 'rename', path);
  }
}
