// The LeaseManager, SnapshotterSet and Applier interfaces of @berth/core over berthd's Leases, Snapshots and Diff
// services: with the content and image proxies they are everything @berth/images' pull needs, so `berth pull
// --local` runs the same pull as berthd's Transfer service, client-side (as `ctr images pull` does).
import { fromTimestamp, type containerd } from '@berth/api';
import {
  DataLossError,
  type Applier,
  type ApplyOptions,
  type Descriptor,
  type Lease,
  type LeaseManager,
  type LeaseResource,
  type Labels,
  type Mount,
  type OpContext,
  type Snapshotter,
  type SnapshotterSet,
} from '@berth/core';
import type { BerthClient } from '../client.js';
import { callOptionsOf } from './content-store.js';
import { SnapshotterProxy } from './snapshotter.js';

const EPOCH = new Date(0);

function toLease(lease: containerd.services.leases.v1.Lease | null, what: string): Lease {
  if (!lease) throw new DataLossError(`no lease returned for ${what}`);
  return { id: lease.id, createdAt: fromTimestamp(lease.created_at) ?? EPOCH, labels: { ...lease.labels } };
}

/** Leases over the Leases service; each operation one call, under the context's namespace. */
export class LeaseManagerProxy implements LeaseManager {
  constructor(private readonly client: BerthClient) {}

  async create(ctx: OpContext, lease: { id: string; labels?: Labels }): Promise<Lease> {
    const res = await this.client.leases.Create({ id: lease.id, labels: { ...(lease.labels ?? {}) } }, callOptionsOf(ctx));
    return toLease(res.lease, lease.id);
  }

  async delete(ctx: OpContext, id: string, options: { sync?: boolean } = {}): Promise<void> {
    await this.client.leases.Delete({ id, sync: options.sync === true }, callOptionsOf(ctx));
  }

  async list(ctx: OpContext, filters: readonly string[] = []): Promise<Lease[]> {
    const res = await this.client.leases.List({ filters: [...filters] }, callOptionsOf(ctx));
    return res.leases.map((l) => toLease(l, 'a listed lease'));
  }

  async addResource(ctx: OpContext, leaseId: string, resource: LeaseResource): Promise<void> {
    await this.client.leases.AddResource({ id: leaseId, resource: { id: resource.id, type: resource.type } }, callOptionsOf(ctx));
  }

  async deleteResource(ctx: OpContext, leaseId: string, resource: LeaseResource): Promise<void> {
    await this.client.leases.DeleteResource({ id: leaseId, resource: { id: resource.id, type: resource.type } }, callOptionsOf(ctx));
  }

  async listResources(ctx: OpContext, leaseId: string): Promise<LeaseResource[]> {
    const res = await this.client.leases.ListResources({ id: leaseId }, callOptionsOf(ctx));
    return res.resources.map((r) => ({ id: r.id, type: r.type }));
  }
}

/** berthd's snapshotters by name, each a SnapshotterProxy; `names` are the ones the caller says the daemon has. */
export class SnapshotterSetProxy implements SnapshotterSet {
  private readonly proxies = new Map<string, SnapshotterProxy>();

  constructor(
    private readonly client: BerthClient,
    private readonly known: readonly string[] = ['overlayfs', 'native'],
  ) {}

  /** Any name: the daemon answers NotFound for a snapshotter it lacks, at the first call. */
  get(name: string): Snapshotter {
    let proxy = this.proxies.get(name);
    if (!proxy) this.proxies.set(name, (proxy = new SnapshotterProxy(this.client, name)));
    return proxy;
  }

  names(): readonly string[] {
    return this.known;
  }
}

function toWireDescriptor(d: Descriptor): containerd.types.DescriptorInput {
  return { media_type: d.mediaType, digest: d.digest, size: d.size, annotations: { ...(d.annotations ?? {}) } };
}

/** Diff.Apply: berthd applies the layer from its content store onto the mounts (of one of its snapshots). */
export class ApplierProxy implements Applier {
  constructor(private readonly client: BerthClient) {}

  async apply(ctx: OpContext, desc: Descriptor, mounts: readonly Mount[], options: ApplyOptions = {}): Promise<Descriptor> {
    const payloads = Object.fromEntries(Object.entries(options.payloads ?? {}).map(([url, value]) => [url, { type_url: url, value }]));
    const res = await this.client.diff.Apply(
      {
        diff: toWireDescriptor(desc),
        mounts: mounts.map((m) => ({ type: m.type, source: m.source, target: m.target ?? '', options: [...m.options] })),
        payloads,
      },
      callOptionsOf(ctx),
    );
    const applied = res.applied;
    if (!applied) throw new DataLossError(`no descriptor returned for the applied layer ${desc.digest}`);
    return {
      mediaType: applied.media_type,
      digest: applied.digest,
      size: applied.size,
      ...(Object.keys(applied.annotations).length > 0 ? { annotations: { ...applied.annotations } } : {}),
    };
  }
}
