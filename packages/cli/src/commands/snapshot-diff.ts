// `berth snapshots diff`, as ctr's: the mounts of two snapshots (temporary views of committed ones) handed to the
// Diff service's Diff, which writes the layer to the content store; all of it under a lease, so that what a crash
// leaves behind (views, the layer) is garbage once the lease expires (24h, as ctr's).
import { randomBytes } from 'node:crypto';
import type { containerd } from '@berth/api';
import { DataLossError, InvalidArgumentError, type Labels, type Mount, type OpContext, type Snapshotter, wireMessageOf } from '@berth/core';
import { mountJson } from './snapshot-output.js';

/** ctr's default media type of the layer written. */
export const DEFAULT_DIFF_MEDIA_TYPE = 'application/vnd.oci.image.layer.v1.tar+gzip';
/** The label that keeps the layer from garbage collection after the lease is gone (`--keep`). */
export const GC_ROOT_LABEL = 'containerd.io/gc.root';

export interface SnapshotDiffOptions {
  readonly mediaType: string;
  readonly ref: string;
  readonly labels: Labels;
}

export interface SnapshotDiffDeps {
  readonly snapshotter: Pick<Snapshotter, 'stat' | 'mounts' | 'view' | 'remove'>;
  /** The Diff service (containerd.services.diff.v1.Diff); the call carries `op`'s lease. */
  readonly diff: (request: containerd.services.diff.v1.DiffRequestInput, op: OpContext) => Promise<containerd.services.diff.v1.DiffResponse>;
  /** Creates the command's own lease (when `op` names none) and returns its id; deleteLease ends it. */
  readonly createLease: () => Promise<string>;
  readonly deleteLease: (id: string) => Promise<void>;
  /** Reports a temporary view or lease that could not be removed (the collector ends them with the lease). */
  readonly warn: (message: string) => void;
}

export interface DiffDescriptor {
  readonly mediaType: string;
  readonly digest: string;
  readonly size: number;
  readonly annotations: Readonly<Record<string, string>>;
}

/** A key for a temporary view that no other diff picks: `<id>-<what>-<nanoseconds>-<random>` (containerd's uniquePart). */
function temporaryKey(id: string, what: string): string {
  const nanos = (Date.now() % 1000) * 1_000_000 + Number(process.hrtime.bigint() % 1_000_000n);
  return `${id}-${what}-${nanos}-${randomBytes(3).toString('base64url')}`;
}

/** Runs `use` with the mounts of snapshot `id`: its own for an active one, else those of a temporary view of it. */
async function withMounts<T>(
  deps: SnapshotDiffDeps,
  op: OpContext,
  id: string,
  use: (mounts: Mount[]) => Promise<T>,
): Promise<T> {
  const info = await deps.snapshotter.stat(op, id);
  if (info.kind === 'active') return use(await deps.snapshotter.mounts(op, id));
  return withView(deps, op, temporaryKey(id, 'view'), id, use);
}

/** Runs `use` with the mounts of a new view `key` of `parent`, and removes the view afterwards, even when `use` fails. */
async function withView<T>(deps: SnapshotDiffDeps, op: OpContext, key: string, parent: string, use: (mounts: Mount[]) => Promise<T>): Promise<T> {
  const mounts = await deps.snapshotter.view(op, key, parent);
  try {
    return await use(mounts);
  } finally {
    await deps.snapshotter.remove(op, key).catch((err: unknown) => deps.warn(`could not remove the temporary view ${key}: ${wireMessageOf(err)}`));
  }
}

/**
 * The layer from snapshot `a` to snapshot `b` (Diff's left and right, in ctr's order), or, without `b`, from the
 * parent of `a` to `a` (containerd's rootfs.CreateDiff; an empty view stands for "no parent"). Everything runs in
 * `op`'s lease, or in a lease of its own (ctr's WithLease) that is deleted at the end; `read` gets the layer while
 * that lease still holds it.
 */
export async function snapshotDiff<T>(
  deps: SnapshotDiffDeps,
  op: OpContext,
  a: string,
  b: string | undefined,
  options: SnapshotDiffOptions,
  read: (desc: DiffDescriptor, op: OpContext) => Promise<T>,
): Promise<T> {
  if (a === '') throw new InvalidArgumentError('snapshot id must be provided');
  const own = op.lease ? undefined : await deps.createLease();
  const leased: OpContext = own ? { ...op, lease: own } : op;
  try {
    return await read(await compareSnapshots(deps, leased, a, b, options), leased);
  } finally {
    if (own) await deps.deleteLease(own).catch((err: unknown) => deps.warn(`could not delete lease ${own}: ${wireMessageOf(err)}`));
  }
}

async function compareSnapshots(deps: SnapshotDiffDeps, op: OpContext, a: string, b: string | undefined, options: SnapshotDiffOptions): Promise<DiffDescriptor> {
  const compare = async (left: Mount[], right: Mount[]) => {
    const { diff } = await deps.diff(
      { left: left.map(mountJson), right: right.map(mountJson), media_type: options.mediaType, ref: options.ref, labels: options.labels },
      op,
    );
    if (!diff) throw new DataLossError('the Diff service returned no descriptor');
    return { mediaType: diff.media_type, digest: diff.digest, size: diff.size, annotations: { ...diff.annotations } };
  };
  if (b !== undefined && b !== '') {
    return withMounts(deps, op, a, (left) => withMounts(deps, op, b, (right) => compare(left, right)));
  }
  const info = await deps.snapshotter.stat(op, a);
  return withView(deps, op, temporaryKey(info.parent, 'parent-view'), info.parent, (lower) =>
    info.kind === 'active'
      ? deps.snapshotter.mounts(op, a).then((upper) => compare(lower, upper))
      : withView(deps, op, temporaryKey(a, 'view'), a, (upper) => compare(lower, upper)),
  );
}
