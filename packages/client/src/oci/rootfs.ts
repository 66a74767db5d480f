// Reading files of a container's root filesystem from the client, as containerd's WithUser does: the snapshot's
// mounts are mounted read-only on a temporary directory (mount.WithTempMount, with tryReadonlyMounts' `ro` for a
// single overlay) and paths are resolved inside that root, symlinks included (continuity's fs.RootPath), so an
// image's /etc/passwd that is a symlink to `../../etc/shadow-like` never escapes it.
import { lstat, mkdtemp, readFile, readlink, rm, rmdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { InvalidArgumentError, type Mount } from '@berth/core';

/** Read access to a root filesystem. */
export interface RootFs {
  /** The file's bytes, or undefined when it (or a directory on its way) does not exist. */
  readFile(path: string): Promise<Buffer | undefined>;
}

/** Links followed while resolving one path before it is refused (Linux's MAXSYMLINKS is 40). */
const MAX_LINKS = 255;

/** `path` resolved inside `root` (an absolute host path), following symlinks as if `root` were `/`. */
export async function resolveInRoot(root: string, path: string): Promise<string> {
  const pending = posix.normalize(`/${path}`).split('/').filter((p) => p !== '');
  const done: string[] = [];
  let links = 0;
  while (pending.length > 0) {
    const part = pending.shift() as string;
    if (part === '.') continue;
    if (part === '..') {
      done.pop();
      continue;
    }
    const host = join(root, ...done, part);
    let isLink = false;
    try {
      isLink = (await lstat(host)).isSymbolicLink();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' && (err as NodeJS.ErrnoException).code !== 'ENOTDIR') throw err;
    }
    if (!isLink) {
      done.push(part);
      continue;
    }
    if (++links > MAX_LINKS) throw new InvalidArgumentError(`too many symlinks resolving ${path} in the container's root filesystem`);
    const target = await readlink(host);
    if (target.startsWith('/')) done.length = 0;
    pending.unshift(...target.split('/').filter((p) => p !== ''));
  }
  return join(root, ...done);
}

/** A root filesystem that is a directory on this host (a spec's absolute `root.path`, or a mounted snapshot). */
export function directoryRootFs(root: string): RootFs {
  return {
    async readFile(path) {
      try {
        return await readFile(await resolveInRoot(root, path));
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
        throw err;
      }
    },
  };
}

/** What mounting needs (@berth/sys's mountAll/unmountAll; a test may stand in). */
export interface RootFsMounter {
  mountAll(mounts: readonly Mount[], target: string): Promise<void>;
  unmountAll(target: string): Promise<void>;
}

/** containerd's tryReadonlyMounts: a single overlay mount gets `ro` (a read needs no sync of the upper dir on umount). */
export function readonlyMounts(mounts: readonly Mount[]): Mount[] {
  if (mounts.length === 1 && mounts[0]?.type === 'overlay') return [{ ...mounts[0], options: [...mounts[0].options, 'ro'] }];
  return mounts.map((m) => ({ ...m, options: [...m.options] }));
}

/**
 * A root filesystem made of a snapshot's mounts, mounted on a temporary directory at the first read and until
 * `close()` (which unmounts and removes the directory; safe to call more than once, and after a failed mount).
 */
export class MountedRootFs implements RootFs, AsyncDisposable {
  private dir: string | undefined;
  private mounting: Promise<RootFs> | undefined;

  constructor(
    private readonly mounts: readonly Mount[],
    private readonly mounter: RootFsMounter,
  ) {}

  async readFile(path: string): Promise<Buffer | undefined> {
    this.mounting ??= this.mount();
    return (await this.mounting).readFile(path);
  }

  private async mount(): Promise<RootFs> {
    const dir = await mkdtemp(join(tmpdir(), 'berth-rootfs-'));
    try {
      await this.mounter.mountAll(readonlyMounts(this.mounts), dir);
    } catch (err) {
      await rm(dir, { recursive: true, force: true });
      throw err;
    }
    this.dir = dir;
    return directoryRootFs(dir);
  }

  async close(): Promise<void> {
    const pending = this.mounting;
    this.mounting = undefined;
    await pending?.catch(() => undefined);
    const dir = this.dir;
    this.dir = undefined;
    if (dir === undefined) return;
    await this.mounter.unmountAll(dir);
    // rmdir, not rm -r: should anything still be mounted there, the image's files must never be deleted.
    await rmdir(dir);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
