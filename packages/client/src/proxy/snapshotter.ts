// The Snapshotter interface of @berth/core over berthd's Snapshots service (containerd's snapshot proxy): a plugin
// or command written against a namespaced Snapshotter works the same in-process and against a remote daemon.
import { fromTimestamp, type containerd } from '@berth/api';
import {
  DataLossError,
  type Mount,
  type OpContext,
  type SnapshotInfo,
  type SnapshotKind,
  type SnapshotOptions,
  type Snapshotter,
  type SnapshotUsage,
} from '@berth/core';
import type { BerthClient } from '../client.js';
import { callOptionsOf } from './content-store.js';

type WireInfo = containerd.services.snapshots.v1.Info;

const EPOCH = new Date(0);

const KINDS: Readonly<Record<string, SnapshotKind>> = { ACTIVE: 'active', VIEW: 'view', COMMITTED: 'committed' };

export function toSnapshotInfo(info: WireInfo): SnapshotInfo {
  const kind = KINDS[info.kind];
  if (!kind) throw new DataLossError(`snapshot ${info.name} has an unknown kind ${info.kind}`);
  return {
    kind,
    name: info.name,
    parent: info.parent,
    labels: { ...info.labels },
    createdAt: fromTimestamp(info.created_at) ?? EPOCH,
    updatedAt: fromTimestamp(info.updated_at) ?? EPOCH,
  };
}

export function toMounts(mounts: readonly containerd.types.Mount[]): Mount[] {
  return mounts.map((m) => ({ type: m.type, source: m.source, ...(m.target ? { target: m.target } : {}), options: [...m.options] }));
}

/** One of berthd's snapshotters (by name: `overlayfs`, `native`), every operation a Snapshots call. */
export class SnapshotterProxy implements Snapshotter {
  readonly scope = 'namespaced' as const;

  constructor(
    private readonly client: BerthClient,
    readonly snapshotter: string,
  ) {}

  async stat(ctx: OpContext, key: string): Promise<SnapshotInfo> {
    const { info } = await this.client.snapshots.Stat({ snapshotter: this.snapshotter, key }, callOptionsOf(ctx));
    if (!info) throw new DataLossError(`no info returned for snapshot ${key}`);
    return toSnapshotInfo(info);
  }

  async update(
    ctx: OpContext,
    info: Pick<SnapshotInfo, 'name'> & Partial<Pick<SnapshotInfo, 'labels'>>,
    fieldpaths?: readonly string[],
  ): Promise<SnapshotInfo> {
    const res = await this.client.snapshots.Update(
      { snapshotter: this.snapshotter, info: { name: info.name, labels: info.labels ?? {} }, update_mask: { paths: [...(fieldpaths ?? [])] } },
      callOptionsOf(ctx),
    );
    if (!res.info) throw new DataLossError(`no info returned for snapshot ${info.name}`);
    return toSnapshotInfo(res.info);
  }

  async usage(ctx: OpContext, key: string): Promise<SnapshotUsage> {
    const { size, inodes } = await this.client.snapshots.Usage({ snapshotter: this.snapshotter, key }, callOptionsOf(ctx));
    return { size, inodes };
  }

  async mounts(ctx: OpContext, key: string): Promise<Mount[]> {
    return toMounts((await this.client.snapshots.Mounts({ snapshotter: this.snapshotter, key }, callOptionsOf(ctx))).mounts);
  }

  async prepare(ctx: OpContext, key: string, parent: string, options?: SnapshotOptions): Promise<Mount[]> {
    const req = { snapshotter: this.snapshotter, key, parent, labels: { ...options?.labels } };
    return toMounts((await this.client.snapshots.Prepare(req, callOptionsOf(ctx))).mounts);
  }

  async view(ctx: OpContext, key: string, parent: string, options?: SnapshotOptions): Promise<Mount[]> {
    const req = { snapshotter: this.snapshotter, key, parent, labels: { ...options?.labels } };
    return toMounts((await this.client.snapshots.View(req, callOptionsOf(ctx))).mounts);
  }

  async commit(ctx: OpContext, name: string, key: string, options?: SnapshotOptions): Promise<void> {
    await this.client.snapshots.Commit({ snapshotter: this.snapshotter, name, key, labels: { ...options?.labels } }, callOptionsOf(ctx));
  }

  async remove(ctx: OpContext, key: string): Promise<void> {
    await this.client.snapshots.Remove({ snapshotter: this.snapshotter, key }, callOptionsOf(ctx));
  }

  async *walk(ctx: OpContext, filters?: readonly string[]): AsyncIterable<SnapshotInfo> {
    const stream = this.client.snapshots.List({ snapshotter: this.snapshotter, filters: [...(filters ?? [])] }, callOptionsOf(ctx));
    for await (const batch of stream) for (const info of batch.info) yield toSnapshotInfo(info);
  }

  async cleanup(ctx: OpContext): Promise<void> {
    await this.client.snapshots.Cleanup({ snapshotter: this.snapshotter }, callOptionsOf(ctx));
  }
}
