/**
 * A small tmpfs for full-disk tests: mounted on a fresh temp dir, filled on demand, unmounted and removed by
 * `dispose()` (call it from the test's teardown, so it runs when the test fails too). Needs root.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, open, rmdir, statfs, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Why a tmpfs cannot be mounted here, or undefined when it can (root is needed). */
export function tmpfsUnavailable(): string | undefined {
  if (process.platform !== 'linux') return 'tmpfs mounts need Linux';
  if (process.getuid?.() !== 0) return 'mounting a tmpfs needs root';
  return undefined;
}

export interface Tmpfs {
  readonly path: string;
  /** Bytes still free for root. */
  free(): Promise<number>;
  /** Writes a filler file until the filesystem is full, or leaves `leave` bytes free. Returns its path. */
  fill(options?: { name?: string; leave?: number }): Promise<string>;
  /** Removes a filler file made by `fill`. */
  unfill(name?: string): Promise<void>;
  /** Unmounts (lazily if still busy) and removes the mount point. Idempotent. */
  dispose(): Promise<void>;
}

export async function mountTmpfs(sizeBytes: number, prefix = 'berth-tmpfs-'): Promise<Tmpfs> {
  const path = await mkdtemp(join(tmpdir(), prefix));
  try {
    await run('mount', ['-t', 'tmpfs', '-o', `size=${sizeBytes},mode=0755`, 'tmpfs', path]);
  } catch (err) {
    await rmdir(path).catch(() => undefined);
    throw err;
  }
  let disposed = false;
  const free = async () => {
    const fs = await statfs(path);
    return fs.bfree * fs.bsize;
  };
  return {
    path,
    free,
    async fill({ name = 'filler', leave = 0 } = {}) {
      const file = join(path, name);
      const fh = await open(file, 'a');
      const chunk = Buffer.alloc(1 << 20, 0x5a);
      try {
        for (;;) {
          const room = (await free()) - leave;
          if (room <= 0) break;
          try {
            const { bytesWritten } = await fh.write(chunk, 0, Math.min(chunk.length, room));
            if (bytesWritten === 0) break;
          } catch (err) {
            if ((err as { code?: unknown }).code === 'ENOSPC') break;
            throw err;
          }
        }
      } finally {
        await fh.close();
      }
      return file;
    },
    async unfill(name = 'filler') {
      await unlink(join(path, name));
    },
    async dispose() {
      if (disposed) return;
      disposed = true;
      try {
        await run('umount', [path]);
      } catch {
        // Something still holds a file open (a daemon that did not stop): detach now, freed when it lets go.
        await run('umount', ['-l', path]).catch(() => undefined);
      }
      // Not recursive: if the unmount failed, the mount point is busy and its files are not ours to delete.
      await rmdir(path);
    },
  };
}
