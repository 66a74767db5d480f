// A small tmpfs the disk-full phase mounts itself (root only) and always unmounts, plus ballast files to fill it.
import { execFile } from 'node:child_process';
import { mkdtemp, open, rm, rmdir } from 'node:fs/promises';
import { statfsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const exec = promisify(execFile);

export interface Tmpfs {
  readonly path: string;
  /** Bytes an unprivileged writer could still write. */
  free(): number;
  /** Unmounts (lazily when busy) and removes the mount point; safe to call twice. */
  unmount(): Promise<void>;
}

export async function mountTmpfs(sizeMiB: number): Promise<Tmpfs> {
  const path = await mkdtemp(join(tmpdir(), 'berth-chaos-tmpfs-'));
  try {
    await exec('mount', ['-t', 'tmpfs', '-o', `size=${sizeMiB}m,mode=0700`, 'tmpfs', path]);
  } catch (err) {
    await rmdir(path).catch(() => undefined);
    throw new Error(`cannot mount a tmpfs: ${(err as { stderr?: string }).stderr?.trim() || (err as Error).message}`);
  }
  let mounted = true;
  return {
    path,
    free: () => {
      const s = statfsSync(path);
      return s.bavail * s.bsize;
    },
    unmount: async () => {
      if (mounted) {
        await exec('umount', [path]).catch(() => exec('umount', ['-l', path]));
        mounted = false;
      }
      await rmdir(path).catch(() => undefined);
    },
  };
}

/** Writes zeros to `file` until `leaveBytes` are left free, or until ENOSPC when `leaveBytes` is 0. */
export async function fillUp(fs: Tmpfs, file: string, leaveBytes: number): Promise<number> {
  const handle = await open(file, 'a');
  const chunk = Buffer.alloc(256 << 10);
  let written = 0;
  try {
    for (;;) {
      const room = fs.free() - leaveBytes;
      if (room <= 0) break;
      const n = Math.min(chunk.length, room);
      try {
        await handle.write(chunk, 0, n);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOSPC') break;
        throw err;
      }
      written += n;
    }
    if (leaveBytes === 0) {
      // The last pages: byte by byte, until the kernel refuses.
      for (let i = 0; i < 64 << 10; i++) {
        try {
          await handle.write(chunk, 0, 1);
          written++;
        } catch {
          break;
        }
      }
    }
  } finally {
    await handle.close();
  }
  return written;
}

export const removeFile = (file: string) => rm(file, { force: true });
