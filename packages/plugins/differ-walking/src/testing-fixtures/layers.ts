// Test helpers (excluded from the build): layers made by GNU tar from real directories, compressed by the real
// tools, and a snapshot of a tree on disk that tests compare entry by entry.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { lstatSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, type Stats } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createMemoryContentStore, sha256, type MemoryContentStore } from '@berth/core/testing';
import { nullLogger, type ContentProvider, type Descriptor, type OpContext } from '@berth/core';
import { differWalkingConfigDefaults, type DifferWalkingConfig } from '../config.js';
import { openWalkingDiffer } from '../open.js';
import { lgetxattr, llistxattr, splitDev } from '@berth/sys';

export const hasRoot = () => process.getuid?.() === 0;

/** A fresh temp dir and its removal (call the removal from the test's teardown). */
export function tempDir(prefix = 'berth-differ-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

export interface TarOptions {
  /** posix (PAX headers: xattrs, big ids, long names) or gnu (L/K long names, base-256 numbers). */
  readonly format?: 'posix' | 'gnu';
  /** Extra GNU tar options (e.g. --owner). */
  readonly extra?: readonly string[];
}

/**
 * GNU tar of `names` under `dir`, in exactly that order (no recursion: each test lists every entry, which is how
 * it controls the order of whiteouts, parents and hard links).
 */
export function gnuTar(dir: string, names: readonly string[], options: TarOptions = {}): Buffer {
  const format = options.format ?? 'posix';
  const args = ['-c', `--format=${format}`, '--numeric-owner', '--no-recursion', ...(format === 'posix' ? ['--xattrs', '--xattrs-include=*'] : []), ...(options.extra ?? []), '-C', dir, '-f', '-', '--', ...names];
  const r = spawnSync('tar', args, { maxBuffer: 1 << 30 });
  if (r.status !== 0) throw new Error(`tar ${args.join(' ')} failed: ${r.stderr.toString()}`);
  return r.stdout;
}

export type Codec = 'none' | 'gzip' | 'zstd';

export function compress(tar: Buffer, codec: Codec): Buffer {
  if (codec === 'none') return tar;
  const [file, args] = codec === 'gzip' ? ['gzip', ['-n', '-c']] : ['zstd', ['-q', '-c']];
  const r = spawnSync(file, args, { input: tar, maxBuffer: 1 << 30 });
  if (r.status !== 0) throw new Error(`${file} failed: ${r.stderr.toString()}`);
  return r.stdout;
}

export const mediaTypeOf: Record<Codec, string> = {
  none: 'application/vnd.oci.image.layer.v1.tar',
  gzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  zstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
};

/** Stores `bytes` in the (memory) content store and returns its descriptor. */
export async function putBlob(store: MemoryContentStore, ctx: OpContext, bytes: Buffer, mediaType: string): Promise<Descriptor> {
  const digest = sha256(bytes);
  const w = await store.writer(ctx, { ref: `test-${digest}` });
  await w.write(bytes);
  await w.commit(bytes.length, digest).catch((err: unknown) => {
    if ((err as { errdef?: string }).errdef !== 'already-exists') throw err;
  });
  return { mediaType, digest, size: bytes.length };
}

export const digestOf = (bytes: Buffer) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

/** What a test compares of each entry of a tree. */
export interface EntryInfo {
  type: 'file' | 'dir' | 'symlink' | 'fifo' | 'char' | 'block' | 'socket';
  mode: string;
  uid: number;
  gid: number;
  size?: number;
  sha256?: string;
  link?: string;
  rdev?: string;
  nlink?: number;
  /** name to hex value. */
  xattrs: Record<string, string>;
  /** mtime in nanoseconds since the epoch, as a decimal string. */
  mtime: string;
}

export interface TreeOptions {
  /** xattr names to leave out (by prefix), e.g. trusted.overlay. of an overlay upper dir. */
  readonly skipXattrs?: readonly string[];
}

function typeOf(st: Stats): EntryInfo['type'] {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isFIFO()) return 'fifo';
  if (st.isCharacterDevice()) return 'char';
  if (st.isBlockDevice()) return 'block';
  return 'socket';
}

/** Every entry under `root` (not the root itself), by relative path, in sorted order. */
export function treeOf(root: string, options: TreeOptions = {}): Map<string, EntryInfo> {
  const out = new Map<string, EntryInfo>();
  const walk = (rel: string) => {
    for (const name of readdirSync(rel ? join(root, rel) : root).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      const path = join(root, r);
      const st = lstatSync(path, { bigint: true });
      const type = typeOf(lstatSync(path));
      const xattrs: Record<string, string> = {};
      for (const x of llistxattr(path).sort()) {
        if (options.skipXattrs?.some((p) => x.startsWith(p))) continue;
        xattrs[x] = lgetxattr(path, x).toString('hex');
      }
      const info: EntryInfo = { type, mode: (Number(st.mode) & 0o7777).toString(8), uid: Number(st.uid), gid: Number(st.gid), xattrs, mtime: String(st.mtimeNs) };
      if (type === 'file') {
        info.size = Number(st.size);
        info.sha256 = createHash('sha256').update(readFileSync(path)).digest('hex');
        info.nlink = Number(st.nlink);
      }
      if (type === 'symlink') info.link = readlinkSync(path);
      if (type === 'char' || type === 'block') {
        const { major, minor } = splitDev(st.rdev);
        info.rdev = `${major}:${minor}`;
      }
      out.set(r, info);
      if (type === 'dir') walk(r);
    }
  };
  walk('');
  return out;
}

/** A walking differ on a memory content store, with its own temp root; `close()` stops its workers. */
export async function openTestDiffer(config: Partial<DifferWalkingConfig> = {}, provider?: (store: MemoryContentStore) => ContentProvider) {
  const store = createMemoryContentStore();
  const root = tempDir('berth-differ-root-');
  const differ = await openWalkingDiffer({
    content: { provider: provider ? provider(store) : store, ingester: store, manager: store, ingests: store },
    root,
    log: nullLogger,
    config: { ...differWalkingConfigDefaults, workers: 2, ...config },
  });
  const ctx: OpContext = { namespace: 'default' };
  return {
    differ,
    store,
    ctx,
    root,
    async close() {
      await differ.close();
      removeDir(root);
    },
  };
}
