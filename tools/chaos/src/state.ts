// What a request may have changed, seen through the API: every namespace with its labels, leases (labels and
// resources), blobs (size and labels), ingests, snapshots, images (target and labels) and containers (every field
// but the times, extensions and spec by value). The malformed-input phase compares it before and after each case.
import { packAny, ServiceNames } from '@berth/api';
import { sha256, writeBlob } from './content.js';
import type { RawGrpc } from './raw-grpc.js';

const sorted = (labels: Record<string, string> | undefined) => Object.fromEntries(Object.entries(labels ?? {}).sort(([a], [b]) => a.localeCompare(b)));

/** The snapshotters whose snapshots the state covers (what berthd composes). */
export const SNAPSHOTTERS = ['native', 'overlayfs'] as const;

interface SnapshotInfo {
  name: string;
  parent: string;
  kind: string;
  labels: Record<string, string>;
}

interface AnyInfo {
  type_url: string;
  value: Uint8Array;
}

interface ContainerInfo {
  id: string;
  labels: Record<string, string>;
  image: string;
  runtime?: { name: string; options?: AnyInfo };
  spec?: AnyInfo;
  snapshotter: string;
  snapshot_key: string;
  extensions: Record<string, AnyInfo>;
}

const anyText = (a: AnyInfo | undefined) => (a ? `${a.type_url}:${Buffer.from(a.value ?? []).toString('base64')}` : '-');

function describeContainer(c: ContainerInfo): string {
  const extensions = Object.entries(c.extensions ?? {})
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `${k}=${anyText(v)}`);
  return JSON.stringify([c.id, c.image, c.runtime?.name ?? '', anyText(c.runtime?.options), anyText(c.spec), c.snapshotter, c.snapshot_key, sorted(c.labels), extensions]);
}

interface ImageInfo {
  name: string;
  labels: Record<string, string>;
  target?: { media_type: string; digest: string; size: number; annotations: Record<string, string> };
}

interface Info {
  digest: string;
  size: number;
  labels: Record<string, string>;
}

/** A canonical text of the daemon's state, without timestamps. */
export async function snapshot(g: RawGrpc): Promise<string> {
  const { namespaces } = await g.call<{ namespaces: { name: string; labels: Record<string, string> }[] }>(ServiceNames.Namespaces, 'List', {}, { namespace: null });
  const out: unknown[] = [];
  for (const ns of [...namespaces].sort((a, b) => a.name.localeCompare(b.name))) {
    const opts = { namespace: ns.name };
    const { leases } = await g.call<{ leases: { id: string; labels: Record<string, string> }[] }>(ServiceNames.Leases, 'List', {}, opts);
    const leaseState = [];
    for (const lease of [...leases].sort((a, b) => a.id.localeCompare(b.id))) {
      const { resources } = await g.call<{ resources: { id: string; type: string }[] }>(ServiceNames.Leases, 'ListResources', { id: lease.id }, opts);
      leaseState.push({ id: lease.id, labels: sorted(lease.labels), resources: resources.map((r) => `${r.type}:${r.id}`).sort() });
    }
    const blobs = (await g.stream<{ info: Info[] }>(ServiceNames.Content, 'List', [{}], opts)).flatMap((r) => r.info);
    const { statuses } = await g.call<{ statuses: { ref: string; offset: number; total: number; expected: string }[] }>(ServiceNames.Content, 'ListStatuses', {}, opts);
    const snapshots: string[] = [];
    for (const snapshotter of SNAPSHOTTERS) {
      const infos = (await g.stream<{ info: SnapshotInfo[] }>(ServiceNames.Snapshots, 'List', [{ snapshotter }], opts)).flatMap((r) => r.info);
      for (const i of infos) snapshots.push(`${snapshotter}/${i.name}<-${i.parent} ${i.kind} ${JSON.stringify(sorted(i.labels))}`);
    }
    const { images } = await g.call<{ images: ImageInfo[] }>(ServiceNames.Images, 'List', {}, opts);
    const { containers } = await g.call<{ containers: ContainerInfo[] }>(ServiceNames.Containers, 'List', {}, opts);
    out.push({
      namespace: ns.name,
      labels: sorted(ns.labels),
      leases: leaseState,
      blobs: blobs.map((b) => ({ digest: b.digest, size: b.size, labels: sorted(b.labels) })).sort((a, b) => a.digest.localeCompare(b.digest)),
      ingests: statuses.map((s) => ({ ref: s.ref, offset: s.offset, total: s.total, expected: s.expected })).sort((a, b) => a.ref.localeCompare(b.ref)),
      snapshots: snapshots.sort(),
      images: images
        .map((i) => `${i.name} ${i.target?.media_type ?? ''} ${i.target?.digest ?? ''} ${i.target?.size ?? ''} ${JSON.stringify(sorted(i.labels))} ${JSON.stringify(sorted(i.target?.annotations))}`)
        .sort(),
      containers: containers.map(describeContainer).sort(),
    });
  }
  return JSON.stringify(out);
}

/** The objects the corpus aims at: a valid request naming them would change them, so a refused one must not. */
export interface Fixture {
  readonly ns: string;
  readonly emptyNs: string;
  readonly digest: string;
  readonly size: number;
  /** Well-formed, never stored. */
  readonly missingDigest: string;
  readonly lease: string;
  readonly ingest: string;
  /** On `snapshotter`: `snapshot` committed, `active` prepared on it (both GC roots). */
  readonly snapshotter: string;
  readonly snapshot: string;
  readonly active: string;
  /** An image whose target is the fixture blob. */
  readonly image: string;
  /** A container (no task) on the `active` snapshot, with a label and an extension. */
  readonly container: string;
  readonly event: ReturnType<typeof packAny>;
}

export const FIXTURE_DATA = Buffer.from('chaos fixture blob\n');

/** What a valid container holds (without its id and snapshot): a runtime name, a spec, a label and an extension. */
export const FIXTURE_CONTAINER = {
  labels: { fixture: 'yes' },
  image: 'chaos.example/fixture:latest',
  runtime: { name: 'io.containerd.runc.v2' },
  spec: { type_url: 'types.containerd.io/opencontainers/runtime-spec/1/Spec', value: Buffer.from('{"ociVersion":"1.0.2"}') },
  extensions: { 'chaos.example/ext': { type_url: 'chaos.example/ext', value: Buffer.from('{"a":1}') } },
};

export async function buildFixture(g: RawGrpc): Promise<Fixture> {
  const ns = 'chaos';
  const emptyNs = 'chaos-empty';
  await g.call(ServiceNames.Namespaces, 'Create', { namespace: { name: ns, labels: { fixture: 'yes' } } }, { namespace: null });
  await g.call(ServiceNames.Namespaces, 'Create', { namespace: { name: emptyNs, labels: {} } }, { namespace: null });
  const digest = await writeBlob(g, 'chaos-fixture', FIXTURE_DATA, { namespace: ns, labels: { 'containerd.io/gc.root': 'chaos', fixture: 'yes' } });
  await g.call(ServiceNames.Leases, 'Create', { id: 'chaos-lease', labels: { fixture: 'yes' } }, { namespace: ns });
  await g.call(ServiceNames.Leases, 'AddResource', { id: 'chaos-lease', resource: { id: digest, type: 'content' } }, { namespace: ns });
  await writeBlob(g, 'chaos-ingest', Buffer.from('partial'), { namespace: ns, lease: 'chaos-lease', commit: false });
  const root = { 'containerd.io/gc.root': 'chaos' };
  const sn = { snapshotter: 'native' };
  await g.call(ServiceNames.Snapshots, 'Prepare', { ...sn, key: 'chaos-layer', parent: '', labels: root }, { namespace: ns });
  await g.call(ServiceNames.Snapshots, 'Commit', { ...sn, name: 'chaos-committed', key: 'chaos-layer', labels: root }, { namespace: ns });
  await g.call(ServiceNames.Snapshots, 'Prepare', { ...sn, key: 'chaos-active', parent: 'chaos-committed', labels: root }, { namespace: ns });
  const image = 'chaos.example/fixture:latest';
  const target = { media_type: 'application/vnd.oci.image.manifest.v1+json', digest, size: FIXTURE_DATA.length };
  await g.call(ServiceNames.Images, 'Create', { image: { name: image, labels: { fixture: 'yes' }, target } }, { namespace: ns });
  const container = 'chaos-container';
  await g.call(ServiceNames.Containers, 'Create', { container: { ...FIXTURE_CONTAINER, id: container, snapshotter: 'native', snapshot_key: 'chaos-active' } }, { namespace: ns });
  return {
    ns,
    emptyNs,
    digest,
    size: FIXTURE_DATA.length,
    missingDigest: sha256(Buffer.from('never stored')),
    lease: 'chaos-lease',
    ingest: 'chaos-ingest',
    snapshotter: 'native',
    snapshot: 'chaos-committed',
    active: 'chaos-active',
    image,
    container,
    event: packAny('containerd.events.NamespaceCreate', { name: 'chaos-victim', labels: {} }),
  };
}

/** Removes every namespace and what it holds (errors ignored: this runs after the daemon may have misbehaved). */
export async function wipe(g: RawGrpc): Promise<void> {
  const quiet = <T>(p: Promise<T>) => p.catch(() => undefined);
  const list = await quiet(g.call<{ namespaces: { name: string }[] }>(ServiceNames.Namespaces, 'List', {}, { namespace: null }));
  for (const { name } of list?.namespaces ?? []) {
    const opts = { namespace: name };
    const containers = await quiet(g.call<{ containers: { id: string }[] }>(ServiceNames.Containers, 'List', {}, opts));
    for (const c of containers?.containers ?? []) await quiet(g.call(ServiceNames.Containers, 'Delete', { id: c.id }, opts));
    const images = await quiet(g.call<{ images: { name: string }[] }>(ServiceNames.Images, 'List', {}, opts));
    for (const i of images?.images ?? []) await quiet(g.call(ServiceNames.Images, 'Delete', { name: i.name }, opts));
    const leases = await quiet(g.call<{ leases: { id: string }[] }>(ServiceNames.Leases, 'List', {}, opts));
    for (const l of leases?.leases ?? []) await quiet(g.call(ServiceNames.Leases, 'Delete', { id: l.id }, opts));
    const statuses = await quiet(g.call<{ statuses: { ref: string }[] }>(ServiceNames.Content, 'ListStatuses', {}, opts));
    for (const s of statuses?.statuses ?? []) await quiet(g.call(ServiceNames.Content, 'Abort', { ref: s.ref }, opts));
    const blobs = await quiet(g.stream<{ info: { digest: string }[] }>(ServiceNames.Content, 'List', [{}], opts));
    for (const b of (blobs ?? []).flatMap((r) => r.info)) await quiet(g.call(ServiceNames.Content, 'Delete', { digest: b.digest }, opts));
    for (const snapshotter of SNAPSHOTTERS) {
      // Children before parents: a pass removes the snapshots nothing names as parent.
      for (let pass = 0; pass < 100; pass++) {
        const infos = ((await quiet(g.stream<{ info: SnapshotInfo[] }>(ServiceNames.Snapshots, 'List', [{ snapshotter }], opts))) ?? []).flatMap((r) => r.info);
        if (infos.length === 0) break;
        const parents = new Set(infos.map((i) => i.parent));
        for (const i of infos) if (!parents.has(i.name)) await quiet(g.call(ServiceNames.Snapshots, 'Remove', { snapshotter, key: i.name }, opts));
      }
    }
    await quiet(g.call(ServiceNames.Namespaces, 'Delete', { name }, { namespace: null }));
  }
}

/** A short account of how two snapshots differ: namespaces added or removed, and which parts of the others changed. */
export function describeChange(before: string, after: string): string {
  type Ns = { namespace: string } & Record<string, unknown>;
  const a = new Map((JSON.parse(before) as Ns[]).map((n) => [n.namespace, n]));
  const b = new Map((JSON.parse(after) as Ns[]).map((n) => [n.namespace, n]));
  const parts: string[] = [];
  for (const name of b.keys()) if (!a.has(name)) parts.push(`namespace ${name} appeared`);
  for (const [name, was] of a) {
    const now = b.get(name);
    if (!now) {
      parts.push(`namespace ${name} vanished`);
      continue;
    }
    for (const key of ['labels', 'leases', 'blobs', 'ingests', 'snapshots']) {
      if (JSON.stringify(was[key]) !== JSON.stringify(now[key])) parts.push(`${name} ${key}: ${JSON.stringify(was[key])} -> ${JSON.stringify(now[key])}`);
    }
  }
  return parts.join('; ').slice(0, 600);
}
