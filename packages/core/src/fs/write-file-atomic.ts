import { randomBytes } from 'node:crypto';
import { open, rename, rm } from 'node:fs/promises';

/** Suffix of temporary files; whatever ends with it is debris of an interrupted write and may be removed. */
export const TMP_SUFFIX = '.tmp';

/**
 * Writes a file so that readers see either the old or the new content, never a torn one: a uniquely named
 * temporary file in the same directory, flushed, then renamed over the target. On any failure (a full disk
 * among them) the temporary file is removed and the target is untouched.
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
