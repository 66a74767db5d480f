import type { Mount, SnapshotKind } from '@berth/core';

/** Where a snapshot's directories are, by id. */
export interface SnapshotPaths {
  upperPath(id: number): string;
  workPath(id: number): string;
}

/**
 * The mounts of an active or view snapshot, exactly as containerd's overlay snapshotter builds them:
 * - no parents: a bind mount of its own `fs` (`rw` or, for a view, `ro`, with `rbind`); overlay needs a lowerdir;
 * - a view of one parent: a read-only bind mount of the parent's `fs` (nothing to stack);
 * - otherwise an overlay: `options` (index=off, userxattr, the configured ones), then for an active snapshot
 *   `workdir` and `upperdir`, then `lowerdir` nearest parent first (a view has lowerdirs only, so it is read-only).
 * The paths stay absolute, as containerd returns them: `@berth/sys`'s mountAll makes long lowerdir lists relative
 * when it mounts, and a client such as `ctr snapshots mounts` prints them as they are.
 */
export function snapshotMounts(kind: SnapshotKind, id: number, parentIds: readonly number[], paths: SnapshotPaths, options: readonly string[]): Mount[] {
  if (parentIds.length === 0) {
    return [{ type: 'bind', source: paths.upperPath(id), options: [kind === 'view' ? 'ro' : 'rw', 'rbind'] }];
  }
  if (kind !== 'active' && parentIds.length === 1) {
    return [{ type: 'bind', source: paths.upperPath(parentIds[0]!), options: ['ro', 'rbind'] }];
  }
  const all = [...options];
  if (kind === 'active') all.push(`workdir=${paths.workPath(id)}`, `upperdir=${paths.upperPath(id)}`);
  all.push(`lowerdir=${parentIds.map((p) => paths.upperPath(p)).join(':')}`);
  return [{ type: 'overlay', source: 'overlay', options: all }];
}

/** Whether `options` set `name` (`name` or `name=<anything>`), as containerd's hasOption checks. */
export function hasOption(options: readonly string[], name: string): boolean {
  return options.some((o) => o === name || o.startsWith(`${name}=`));
}
