/**
 * Filesystem trees for the snapshotter suite (containerd's continuity/fs/fstest, in spirit): operations applied to a
 * directory, and a tree read back entry by entry so that a mounted snapshot can be compared with a flat directory
 * that had the same operations applied.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmod, chown, link, lstat, lutimes, mkdir, readFile, readdir, readlink, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Mount } from '../kinds/snapshots.js';

/**
 * The Linux calls the suite needs that Node lacks. `@berth/sys` satisfies this interface (pass its module
 * namespace): core cannot import it, since @berth/sys depends on core.
 */
export interface ConformanceSys {
  mountAll(mounts: readonly Mount[], target: string): Promise<void>;
  unmountAll(target: string, flags?: number): Promise<void>;
  mknod(path: string, mode: number, dev?: number | bigint): void;
  lsetxattr(path: string, name: string, value: Buffer | string, flags?: number): void;
  lgetxattr(path: string, name: string): Buffer;
  llistxattr(path: string): string[];
}

/** One change to a tree rooted at `root` (paths are relative to it; a leading `/` is allowed). */
export type TreeOp = (root: string, sys: ConformanceSys) => Promise<void>;

const S_IFIFO = 0o010000;
const S_IFCHR = 0o020000;

const at = (root: string, path: string) => join(root, path);

/** A file with this content and mode (set explicitly, so the umask does not matter). */
export const createFile = (path: string, content: string | Uint8Array, mode = 0o644): TreeOp =>
  async (root) => {
    await writeFile(at(root, path), content);
    await chmod(at(root, path), mode);
  };

/** A directory with this mode (its parent must exist). */
export const createDir = (path: string, mode = 0o755): TreeOp =>
  async (root) => {
    await mkdir(at(root, path));
    await chmod(at(root, path), mode);
  };

export const removeAll = (path: string): TreeOp =>
  async (root) => {
    await rm(at(root, path), { recursive: true, force: true });
  };

export const chownPath = (path: string, uid: number, gid: number): TreeOp =>
  async (root) => {
    await chown(at(root, path), uid, gid);
  };

export const chmodPath = (path: string, mode: number): TreeOp =>
  async (root) => {
    await chmod(at(root, path), mode);
  };

/** A hard link `path` to the existing `existing`. */
export const hardlink = (existing: string, path: string): TreeOp =>
  async (root) => {
    await link(at(root, existing), at(root, path));
  };

export const symlinkTo = (target: string, path: string): TreeOp =>
  async (root) => {
    await symlink(target, at(root, path));
  };

/**
 * Renames `from` to `to`. Where the kernel refuses with EXDEV (overlayfs without redirect_dir, renaming a directory
 * that comes from a lower layer), it moves as mv does: a copy with everything kept, then the original removed.
 */
export const renamePath = (from: string, to: string): TreeOp =>
  async (root) => {
    try {
      await rename(at(root, from), at(root, to));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
      await promisify(execFile)('/bin/mv', ['-T', '--', at(root, from), at(root, to)]);
    }
  };

export const createFifo = (path: string, mode = 0o644): TreeOp =>
  async (root, sys) => {
    sys.mknod(at(root, path), S_IFIFO | 0o600);
    await chmod(at(root, path), mode);
  };

/** A character device (e.g. 1, 3 for a null device); minor below 256 and major below 4096. */
export const createCharDevice = (path: string, major: number, minor: number, mode = 0o644): TreeOp =>
  async (root, sys) => {
    sys.mknod(at(root, path), S_IFCHR | 0o600, (major << 8) | minor);
    await chmod(at(root, path), mode);
  };

export const setXattr = (path: string, name: string, value: Buffer | string): TreeOp =>
  async (root, sys) => {
    sys.lsetxattr(at(root, path), name, value);
  };

/** Access and modification times, in seconds since the epoch (symlinks themselves, not their targets). */
export const setTimes = (path: string, seconds: number): TreeOp =>
  async (root) => {
    await lutimes(at(root, path), seconds, seconds);
  };

/** Several operations in order, as one. */
export const ops = (...all: readonly TreeOp[]): TreeOp =>
  async (root, sys) => {
    for (const op of all) await op(root, sys);
  };

export type EntryType = 'file' | 'dir' | 'symlink' | 'fifo' | 'char' | 'block' | 'socket';

/** What the suite compares of one entry. Directory and symlink sizes are left out: they depend on the filesystem. */
export interface TreeEntry {
  readonly type: EntryType;
  /** Permission bits with setuid, setgid and sticky. */
  readonly mode: string;
  readonly uid: number;
  readonly gid: number;
  readonly size?: number;
  readonly sha256?: string;
  readonly target?: string;
  readonly rdev?: number;
  /** Paths in the tree that are the same inode, when there are several. */
  readonly hardlinks?: string;
  readonly xattrs?: Readonly<Record<string, string>>;
  readonly mtimeNs?: string;
}

export interface ReadTreeOptions {
  /** Compare extended attributes (names and hex values). */
  readonly xattrs?: boolean;
  /** Compare modification times (nanoseconds). */
  readonly mtimes?: boolean;
}

/** Every entry under `root` (not `root` itself), by path relative to it (`/a/b`). */
export async function readTree(root: string, sys: ConformanceSys, options: ReadTreeOptions = {}): Promise<Map<string, TreeEntry>> {
  const entries = new Map<string, TreeEntry>();
  const inodes = new Map<bigint, string[]>();
  const pathOf = new Map<string, bigint>();
  async function walk(dir: string, rel: string): Promise<void> {
    for (const name of (await readdir(dir)).sort()) {
      const full = join(dir, name);
      const path = `${rel}/${name}`;
      const st = await lstat(full, { bigint: true });
      const type = typeOf(Number(st.mode));
      const entry: { -readonly [K in keyof TreeEntry]: TreeEntry[K] } = {
        type,
        mode: (Number(st.mode) & 0o7777).toString(8).padStart(4, '0'),
        uid: Number(st.uid),
        gid: Number(st.gid),
      };
      if (type === 'file') {
        entry.size = Number(st.size);
        entry.sha256 = createHash('sha256').update(await readFile(full)).digest('hex');
      } else if (type === 'symlink') {
        entry.target = await readlink(full);
      } else if (type === 'char' || type === 'block') {
        entry.rdev = Number(st.rdev);
      }
      if (options.xattrs) {
        const attrs: Record<string, string> = {};
        for (const attr of sys.llistxattr(full).sort()) attrs[attr] = sys.lgetxattr(full, attr).toString('hex');
        entry.xattrs = attrs;
      }
      if (options.mtimes && type !== 'symlink') entry.mtimeNs = st.mtimeNs.toString();
      entries.set(path, entry);
      if (type !== 'dir') {
        inodes.set(st.ino, [...(inodes.get(st.ino) ?? []), path]);
        pathOf.set(path, st.ino);
      }
      if (type === 'dir') await walk(full, path);
    }
  }
  await walk(root, '');
  for (const [path, ino] of pathOf) {
    const group = inodes.get(ino)!;
    if (group.length > 1) entries.set(path, { ...entries.get(path)!, hardlinks: [...group].sort().join(' ') });
  }
  return entries;
}

function typeOf(mode: number): EntryType {
  switch (mode & 0o170000) {
    case 0o100000:
      return 'file';
    case 0o040000:
      return 'dir';
    case 0o120000:
      return 'symlink';
    case 0o010000:
      return 'fifo';
    case 0o020000:
      return 'char';
    case 0o060000:
      return 'block';
    default:
      return 'socket';
  }
}

/** The differences between two trees, one line each (`/a: missing`, `/b: mode 0700, expected 0755`); empty when equal. */
export function treeDifferences(actual: ReadonlyMap<string, TreeEntry>, expected: ReadonlyMap<string, TreeEntry>): string[] {
  const out: string[] = [];
  for (const [path, want] of expected) {
    const got = actual.get(path);
    if (!got) {
      out.push(`${path}: missing (expected a ${want.type})`);
      continue;
    }
    for (const key of new Set([...Object.keys(want), ...Object.keys(got)]) as Set<keyof TreeEntry>) {
      const a = JSON.stringify(got[key]);
      const e = JSON.stringify(want[key]);
      if (a !== e) out.push(`${path}: ${key} ${a ?? 'absent'}, expected ${e ?? 'absent'}`);
    }
  }
  for (const [path, got] of actual) if (!expected.has(path)) out.push(`${path}: unexpected ${got.type}`);
  return out;
}
