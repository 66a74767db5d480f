import { implementService, ServiceNames, toTimestamp, type containerd } from '@berth/api';
import {
  batches,
  labelsWireSize,
  LIST_BATCH_LIMITS,
  InvalidArgumentError,
  opContextOf,
  type Mount,
  type RpcContext,
  type RpcServiceImplementation,
  type RpcServices,
  type SnapshotInfo,
  type SnapshotKind,
  type Snapshotter,
  type SnapshotterSet,
} from '@berth/core';

type WireInfo = containerd.services.snapshots.v1.InfoInput;
type WireKind = containerd.services.snapshots.v1.Kind;

/** A List response carries at most this many snapshots (as containerd), and stops growing past about LIST_BATCH_BYTES. */
export const LIST_BATCH_COUNT = LIST_BATCH_LIMITS.count;
export const LIST_BATCH_BYTES = LIST_BATCH_LIMITS.bytes;

const KINDS: Readonly<Record<SnapshotKind, WireKind>> = { active: 'ACTIVE', view: 'VIEW', committed: 'COMMITTED' };

/**
 * containerd.services.snapshots.v1.Snapshots over the metadata plugin's namespaced snapshotters, the one named by
 * each request's `snapshotter`. The snapshotters themselves publish `/snapshot/prepare|commit|remove`, so every
 * in-process caller does (containerd publishes from its snapshots service plugin, which every caller goes through).
 */
export class SnapshotsService implements RpcServices {
  readonly services: readonly RpcServiceImplementation[];

  constructor(private readonly snapshotters: SnapshotterSet) {
    this.services = [
      implementService(ServiceNames.Snapshots, {
        Prepare: async (req, ctx) => ({
          mounts: toWireMounts(await this.get(req.snapshotter).prepare(opContextOf(ctx), req.key, req.parent, { labels: { ...req.labels } })),
        }),
        View: async (req, ctx) => ({
          mounts: toWireMounts(await this.get(req.snapshotter).view(opContextOf(ctx), req.key, req.parent, { labels: { ...req.labels } })),
        }),
        Mounts: async (req, ctx) => ({ mounts: toWireMounts(await this.get(req.snapshotter).mounts(opContextOf(ctx), req.key)) }),
        Commit: async (req, ctx) => {
          await this.get(req.snapshotter).commit(opContextOf(ctx), req.name, req.key, { labels: { ...req.labels } });
        },
        Remove: async (req, ctx) => {
          await this.get(req.snapshotter).remove(opContextOf(ctx), req.key);
        },
        Stat: async (req, ctx) => ({ info: toWireInfo(await this.get(req.snapshotter).stat(opContextOf(ctx), req.key)) }),
        Update: async (req, ctx) => {
          const sn = this.get(req.snapshotter);
          const paths = req.update_mask?.paths ?? [];
          const info = await sn.update(
            opContextOf(ctx),
            { name: req.info?.name ?? '', labels: { ...req.info?.labels } },
            paths.length > 0 ? paths : undefined,
          );
          return { info: toWireInfo(info) };
        },
        List: (req, ctx) => this.list(req.snapshotter, req.filters, ctx),
        Usage: async (req, ctx) => this.get(req.snapshotter).usage(opContextOf(ctx), req.key),
        Cleanup: async (req, ctx) => {
          await this.get(req.snapshotter).cleanup(opContextOf(ctx));
        },
      }),
    ];
  }

  /** The snapshotter a request names, with containerd's errors for none and for one that is not loaded. */
  private get(name: string): Snapshotter {
    if (!name) throw new InvalidArgumentError('snapshotter argument missing');
    if (!this.snapshotters.names().includes(name)) throw new InvalidArgumentError(`snapshotter not loaded: ${name}`);
    return this.snapshotters.get(name);
  }

  private async *list(snapshotter: string, filters: readonly string[], ctx: RpcContext): AsyncIterable<containerd.services.snapshots.v1.ListSnapshotsResponseInput> {
    const sn = this.get(snapshotter);
    const op = opContextOf(ctx);
    for await (const info of batches(sn.walk(op, filters), toWireInfo, approximateSize)) yield { info };
  }
}

export function toWireInfo(info: SnapshotInfo): WireInfo {
  return {
    name: info.name,
    parent: info.parent,
    kind: KINDS[info.kind] ?? 'UNKNOWN',
    created_at: toTimestamp(info.createdAt),
    updated_at: toTimestamp(info.updatedAt),
    labels: info.labels,
  };
}

export function toWireMounts(mounts: readonly Mount[]): containerd.types.MountInput[] {
  return mounts.map((m) => ({ type: m.type, source: m.source, ...(m.target ? { target: m.target } : {}), options: [...m.options] }));
}

/** Roughly what an Info costs on the wire. */
function approximateSize(info: SnapshotInfo): number {
  return 48 + info.name.length + info.parent.length + labelsWireSize(info.labels);
}
