import type { Labels, OpContext } from './context.js';

/** A filesystem mount as containerd describes it (mount.Mount): what `mount -t <type> -o <options> <source>` takes. */
export interface Mount {
  readonly type: string;
  readonly source: string;
  /** Where under the mount point it goes, for a mount of several (containerd 2's Target); absent: the root. */
  readonly target?: string;
  readonly options: readonly string[];
}

export type SnapshotKind = 'view' | 'active' | 'committed';

/** containerd's snapshots.Info. `parent` is '' for a snapshot without one. */
export interface SnapshotInfo {
  readonly kind: SnapshotKind;
  /** The key of an active or view snapshot, the name of a committed one. */
  readonly name: string;
  readonly parent: string;
  readonly labels: Labels;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

/** Resources a snapshot uses, excluding its parents' (containerd's snapshots.Usage). */
export interface SnapshotUsage {
  readonly size: number;
  readonly inodes: number;
}

export interface SnapshotOptions {
  readonly labels?: Labels;
}

/**
 * Whose view of snapshots an interface gives. `raw`: a snapshotter plugin's own (overlayfs, native), keyed as the
 * metadata plugin names them; `namespaced`: what one namespace sees (the metadata plugin's view over a raw one,
 * with leases and garbage-collection labels). As with content, the `scope` keeps one from being passed for the other.
 */
export type SnapshotScope = 'namespaced' | 'raw';

/**
 * containerd's snapshots.Snapshotter. Keys and names share one space per snapshotter (and, namespaced, per
 * namespace). Errors are errdefs: NotFound for an unknown key or parent, AlreadyExists for a key in use,
 * FailedPrecondition for a commit of anything but an active snapshot, the mounts of a committed one, a remove of a
 * snapshot that has children; InvalidArgument for a parent that is not committed (as containerd's storage says)
 * and an empty key or name. @berth/core/testing's describeSnapshotterConformance checks all of it.
 */
export interface Snapshotter<S extends SnapshotScope = 'namespaced'> {
  readonly scope: S;
  stat(ctx: OpContext, key: string): Promise<SnapshotInfo>;
  /** Only labels are mutable: `labels` replaces them, `labels.<key>` sets or removes one; none = replace all. */
  update(ctx: OpContext, info: Pick<SnapshotInfo, 'name'> & Partial<Pick<SnapshotInfo, 'labels'>>, fieldpaths?: readonly string[]): Promise<SnapshotInfo>;
  /** Computed for active snapshots (may walk their tree); cached at commit for committed ones. */
  usage(ctx: OpContext, key: string): Promise<SnapshotUsage>;
  /** The mounts of an active or view snapshot. */
  mounts(ctx: OpContext, key: string): Promise<Mount[]>;
  /** A writable snapshot on top of `parent` ('' for an empty one), returning its mounts. */
  prepare(ctx: OpContext, key: string, parent: string, options?: SnapshotOptions): Promise<Mount[]>;
  /** A read-only snapshot of `parent`, returning its mounts (read-only). It cannot be committed. */
  view(ctx: OpContext, key: string, parent: string, options?: SnapshotOptions): Promise<Mount[]>;
  /** Makes the active snapshot `key` the committed snapshot `name` (with the same parent); `key` is gone after. */
  commit(ctx: OpContext, name: string, key: string, options?: SnapshotOptions): Promise<void>;
  remove(ctx: OpContext, key: string): Promise<void>;
  /** Every snapshot matching any of the filters (containerd's syntax over `name`, `parent`, `kind`, `labels.*`). */
  walk(ctx: OpContext, filters?: readonly string[]): AsyncIterable<SnapshotInfo>;
  /** Removes what no snapshot refers to any more (directories a crash left behind). */
  cleanup(ctx: OpContext): Promise<void>;
}

/** A snapshotter plugin's own store (io.containerd.snapshotter.v1): keys are the metadata plugin's, not a namespace's. */
export type RawSnapshotter = Snapshotter<'raw'>;

/** The namespaced snapshotters by name (`overlayfs`, `native`), as the metadata plugin serves them. */
export interface SnapshotterSet {
  /** The snapshotter of that name; NotFoundError (`snapshotter <name> was not found`) when there is none. */
  get(name: string): Snapshotter;
  /** Names in composition order. */
  names(): readonly string[];
}
