// Where a layer goes for a set of mounts, by containerd's rules (diff/apply/apply_linux.go), and the temporary
// mounts of the general case (mount.WithTempMount, WithReadonlyTempMount).
import { mkdtemp, rmdir, stat } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import { InvalidArgumentError, type Mount } from '@berth/core';
import { mountAll, unmountAll } from '@berth/sys';
import type { LayerTarget } from './apply/layer-writer.js';

/** How a layer is applied onto mounts: straight into a directory, or into a temporary mount of them. */
export type ApplyPlan =
  | { readonly kind: 'direct'; readonly root: string; readonly whiteouts: LayerTarget['whiteouts']; readonly lowers: readonly string[] }
  | { readonly kind: 'mount'; readonly mounts: readonly Mount[] };

const optionValue = (options: readonly string[], key: string): string | undefined => {
  const found = options.find((o) => o.startsWith(`${key}=`));
  return found === undefined ? undefined : found.slice(key.length + 1);
};

const isBind = (m: Mount) => m.type === 'bind' || m.options.includes('bind') || m.options.includes('rbind');

/**
 * - one overlay mount with an upperdir: its upper dir, whiteouts in overlay form, parents' metadata from its
 *   lowerdirs (containerd does the same, so layers never need their parents mounted);
 * - one bind mount: its source directory, with real deletions (a native snapshot, or a first layer);
 * - anything else: mounted on a temporary directory.
 * A read-only mount (`ro`, or an overlay without an upperdir, which is what a view is) is refused.
 */
export function planApply(mounts: readonly Mount[]): ApplyPlan {
  if (mounts.length === 0) throw new InvalidArgumentError('no mounts to apply the layer onto');
  for (const m of mounts) {
    if (m.options.includes('ro')) throw new InvalidArgumentError(`cannot apply a layer onto a read-only mount (${m.type} ${m.source})`);
    if (m.type === 'overlay' && optionValue(m.options, 'upperdir') === undefined) {
      throw new InvalidArgumentError(`cannot apply a layer onto an overlay without an upperdir (read-only: ${m.options.join(',')})`);
    }
  }
  if (mounts.length === 1) {
    const m = mounts[0]!;
    if (m.type === 'overlay') {
      const upper = optionValue(m.options, 'upperdir')!;
      if (!isAbsolute(upper)) throw new InvalidArgumentError(`overlay upperdir ${JSON.stringify(upper)} is not an absolute path`);
      // Relative lowerdirs (compacted options) name nothing from here: without them, parents get default metadata.
      const lowers = (optionValue(m.options, 'lowerdir') ?? '').split(':').filter((d) => isAbsolute(d));
      return { kind: 'direct', root: upper, whiteouts: 'overlay', lowers };
    }
    if (isBind(m)) {
      if (!isAbsolute(m.source)) throw new InvalidArgumentError(`bind mount source ${JSON.stringify(m.source)} is not an absolute path`);
      return { kind: 'direct', root: m.source, whiteouts: 'delete', lowers: [] };
    }
  }
  return { kind: 'mount', mounts };
}

/** Checks that a directory the layer goes into straight away is one. */
export async function checkDirectory(path: string, what: string): Promise<void> {
  const st = await stat(path).catch((err: unknown) => {
    throw new InvalidArgumentError(`${what} ${path}: ${(err as Error).message}`, { cause: err });
  });
  if (!st.isDirectory()) throw new InvalidArgumentError(`${what} ${path} is not a directory`);
}

/**
 * Mounts `mounts` on a fresh directory under `tmpRoot`, runs `fn` on it, then unmounts and removes the directory
 * (rmdir, never recursive: if the unmount failed, what is below belongs to the mount). No mounts: an empty directory.
 */
export async function withTempMount<T>(tmpRoot: string, mounts: readonly Mount[], fn: (root: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpRoot, 'mount-'));
  let mounted = false;
  try {
    if (mounts.length > 0) {
      await mountAll(mounts, dir);
      mounted = true;
    }
    return await fn(dir);
  } finally {
    if (mounted) await unmountAll(dir);
    await rmdir(dir);
  }
}

/** containerd's readonlyMounts: `ro` on each mount; an overlay loses upperdir/workdir, its upper becomes a lower. */
export function readonlyMounts(mounts: readonly Mount[]): Mount[] {
  return mounts.map((m) => {
    if (m.type === 'overlay') {
      const upper = optionValue(m.options, 'upperdir');
      const options = m.options
        .filter((o) => !o.startsWith('upperdir=') && !o.startsWith('workdir='))
        .map((o) => (upper !== undefined && o.startsWith('lowerdir=') ? `lowerdir=${upper}:${o.slice('lowerdir='.length)}` : o));
      return { ...m, options };
    }
    return { ...m, options: [...m.options.filter((o) => o !== 'rw' && o !== 'ro'), 'ro'] };
  });
}

/** A tree to read for Diff: a single bind mount's source as it is, anything else mounted read-only. */
export async function withReadTree<T>(tmpRoot: string, mounts: readonly Mount[], fn: (root: string) => Promise<T>): Promise<T> {
  if (mounts.length === 1 && isBind(mounts[0]!) && isAbsolute(mounts[0]!.source)) {
    await checkDirectory(mounts[0]!.source, 'bind mount source');
    return fn(mounts[0]!.source);
  }
  return withTempMount(tmpRoot, readonlyMounts(mounts), fn);
}
