import {
  GC_REF_CONTENT,
  GC_REF_SNAPSHOT,
  GC_ROOT_LABEL,
  LEASE_EXPIRE_LABEL,
  LEASE_FLAT_LABEL,
  isNotFound,
  type GCStats,
  type Labels,
  type RawContentStore,
} from '@berth/core';
import type { Database, Records } from './database.js';
import type { BackendSweeper } from './snapshots.js';
import {
  depth,
  keys,
  type BlobRecord,
  type ContainerRecord,
  type ImageRecord,
  type IngestRecord,
  type LeaseRecord,
  type SnapshotRecord,
} from './schema.js';


type NodeKind = 'content' | 'snapshot' | 'ingest' | 'lease';

const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})$/;

/** Parses an RFC 3339 time; undefined when malformed. */
export function parseRfc3339(value: string): number | undefined {
  if (!RFC3339.test(value)) return undefined;
  const t = Date.parse(value);
  return Number.isNaN(t) ? undefined : t;
}

const nodeId = (kind: NodeKind, ns: string, key: string): string => `${kind}\0${ns}\0${key}`;

/** What one mark phase found reachable. */
export interface Marked {
  has(kind: NodeKind, ns: string, key: string): boolean;
  readonly size: number;
}

/**
 * Marks everything reachable from the roots of every namespace (containerd's scanRoots + references + tricolor):
 * - roots: images (their target), containers (their snapshot), leases that have not expired (everything they hold),
 *   blobs and snapshots labelled `containerd.io/gc.root`, ingests whose expireAt is in the future;
 * - edges: `containerd.io/gc.ref.content[.|/…]` and `containerd.io/gc.ref.snapshot.<snapshotter>[/…]` labels on
 *   blobs, images, containers and snapshots; a snapshot's parent; an ingest's expected blob.
 * A lease labelled `containerd.io/gc.flat` holds only its direct resources: they are marked, never expanded
 * (snapshots still keep their parents). A node reached both flat and normally is expanded.
 */
export function mark(records: Records, now: number, onInvalidExpiry?: (ns: string, lease: string, value: string) => void): Marked {
  const marked = new Set<string>();
  const expanded = new Set<string>();
  const work: Array<{ kind: NodeKind; ns: string; key: string; flat: boolean }> = [];

  const visit = (kind: NodeKind, ns: string, key: string, flat = false): void => {
    const id = nodeId(kind, ns, key);
    marked.add(id);
    const state = `${flat ? 'f' : 'n'}${id}`;
    if (expanded.has(state) || (flat && expanded.has(`n${id}`))) return;
    expanded.add(state);
    work.push({ kind, ns, key, flat });
  };

  const labelRefs = (ns: string, labels: Labels): void => {
    for (const [k, v] of Object.entries(labels)) {
      if (k === GC_REF_CONTENT || (k.startsWith(GC_REF_CONTENT) && (k[GC_REF_CONTENT.length] === '.' || k[GC_REF_CONTENT.length] === '/'))) {
        visit('content', ns, v);
      } else if (k.startsWith(GC_REF_SNAPSHOT)) {
        let snapshotter = k.slice(GC_REF_SNAPSHOT.length);
        const slash = snapshotter.indexOf('/');
        if (slash >= 0) snapshotter = snapshotter.slice(0, slash);
        visit('snapshot', ns, `${snapshotter}/${v}`);
      }
    }
  };

  for (const ns of records.childNames(keys.root)) {
    for (const { key, value } of records.entries<LeaseRecord>(keys.leases(ns), depth.lease)) {
      const id = key[3]!;
      const labels = value.labels ?? {};
      const expire = labels[LEASE_EXPIRE_LABEL];
      if (expire !== undefined) {
        const at = parseRfc3339(expire);
        if (at === undefined) onInvalidExpiry?.(ns, id, expire);
        else if (now > at) continue; // expired: not a root, swept below
      }
      const flat = labels[LEASE_FLAT_LABEL] !== undefined;
      visit('lease', ns, id);
      const base = keys.lease(ns, id);
      for (const { key: k } of records.entries([...base, 'content'], depth.leaseContent)) visit('content', ns, k[5]!, flat);
      for (const { key: k } of records.entries([...base, 'ingests'], depth.leaseIngest)) visit('ingest', ns, k[5]!);
      for (const { key: k } of records.entries([...base, 'snapshots'], depth.leaseSnapshot)) {
        visit('snapshot', ns, `${k[5]!}/${k[6]!}`, flat);
      }
    }

    for (const { value } of records.entries<ImageRecord>(keys.images(ns), depth.image)) {
      if (value.target?.digest) visit('content', ns, value.target.digest);
      labelRefs(ns, value.labels ?? {});
    }

    for (const { key, value } of records.entries<IngestRecord>(keys.ingests(ns), depth.ingest)) {
      if (value.expireAt !== undefined && value.expireAt > now) visit('ingest', ns, key[4]!);
    }

    for (const { key, value } of records.entries<BlobRecord>(keys.blobs(ns), depth.blob)) {
      if (value.labels?.[GC_ROOT_LABEL] !== undefined) visit('content', ns, key[4]!);
    }

    for (const { value } of records.entries<ContainerRecord>(keys.containers(ns), depth.container)) {
      if (value.snapshotter) visit('snapshot', ns, `${value.snapshotter}/${value.snapshotKey ?? ''}`);
      labelRefs(ns, value.labels ?? {});
    }

    for (const { key, value } of records.entries<SnapshotRecord>(keys.snapshots(ns), depth.snapshot)) {
      if (value.labels?.[GC_ROOT_LABEL] !== undefined) visit('snapshot', ns, `${key[3]!}/${key[4]!}`);
    }
  }

  for (let node = work.pop(); node; node = work.pop()) {
    const { kind, ns, key, flat } = node;
    if (kind === 'content') {
      if (flat) continue;
      const blob = records.get<BlobRecord>(keys.blob(ns, key));
      if (blob) labelRefs(ns, blob.labels ?? {});
    } else if (kind === 'snapshot') {
      const slash = key.indexOf('/');
      if (slash < 0) continue;
      const snapshotter = key.slice(0, slash);
      const snapshot = records.get<SnapshotRecord>(keys.snapshot(ns, snapshotter, key.slice(slash + 1)));
      if (!snapshot) continue;
      if (snapshot.parent) visit('snapshot', ns, `${snapshotter}/${snapshot.parent}`, flat);
      if (!flat) labelRefs(ns, snapshot.labels ?? {});
    } else if (kind === 'ingest') {
      const ingest = records.get<IngestRecord>(keys.ingest(ns, key));
      if (ingest?.shared && ingest.expected) visit('content', ns, ingest.expected);
    }
  }

  return {
    has: (kind, ns, key) => marked.has(nodeId(kind, ns, key)),
    get size() {
      return marked.size;
    },
  };
}

export interface SweepResult {
  content: number;
  ingests: number;
  leases: number;
  snapshots: number;
  removedDigests: Set<string>;
  removedBackendRefs: Set<string>;
  /** Backend keys of the removed snapshot records, by snapshotter. */
  removedSnapshots: Map<string, Set<string>>;
}

/**
 * Removes every lease, ingest, blob and snapshot record that the mark phase did not reach. A removed snapshot's
 * link in its parent's children goes too (containerd leaves it, and the parent can then never be removed).
 */
export function sweep(records: Records, marked: Marked): SweepResult {
  const result: SweepResult = {
    content: 0,
    ingests: 0,
    leases: 0,
    snapshots: 0,
    removedDigests: new Set(),
    removedBackendRefs: new Set(),
    removedSnapshots: new Map(),
  };
  for (const ns of records.childNames(keys.root)) {
    for (const { key } of records.entries<LeaseRecord>(keys.leases(ns), depth.lease)) {
      if (marked.has('lease', ns, key[3]!)) continue;
      records.removeTree(keys.lease(ns, key[3]!));
      result.leases++;
    }
    for (const { key, value } of records.entries<IngestRecord>(keys.ingests(ns), depth.ingest)) {
      if (marked.has('ingest', ns, key[4]!)) continue;
      records.remove(keys.ingest(ns, key[4]!));
      result.removedBackendRefs.add(value.ref);
      result.ingests++;
    }
    for (const { key } of records.entries<BlobRecord>(keys.blobs(ns), depth.blob)) {
      if (marked.has('content', ns, key[4]!)) continue;
      records.remove(keys.blob(ns, key[4]!));
      result.removedDigests.add(key[4]!);
      result.content++;
    }
    for (const snapshotter of records.childNames(keys.snapshots(ns))) {
      for (const { key, value } of records.entries<SnapshotRecord>(keys.snapshotter(ns, snapshotter), depth.snapshot)) {
        const name = key[4]!;
        if (marked.has('snapshot', ns, `${snapshotter}/${name}`)) continue;
        records.removeTree(keys.snapshot(ns, snapshotter, name));
        if (value.parent) records.remove(keys.snapshotChild(ns, snapshotter, value.parent, name));
        let removed = result.removedSnapshots.get(snapshotter);
        if (!removed) result.removedSnapshots.set(snapshotter, (removed = new Set()));
        removed.add(value.name);
        result.snapshots++;
      }
    }
  }
  return result;
}

/** What the backend must keep: every digest recorded in any namespace, and every live backend ingest. */
export function backendReferences(records: Records): { digests: Set<string>; ingestRefs: Set<string> } {
  const digests = new Set<string>();
  const ingestRefs = new Set<string>();
  for (const ns of records.childNames(keys.root)) {
    for (const { key } of records.entries(keys.blobs(ns), depth.blob)) digests.add(key[4]!);
    for (const { value } of records.entries<IngestRecord>(keys.ingests(ns), depth.ingest)) {
      // A shared ingest's blob may live in no namespace at all yet: keep it for the ingest.
      if (value.shared && value.expected) digests.add(value.expected);
      ingestRefs.add(value.ref);
    }
  }
  return { digests, ingestRefs };
}

/**
 * Mark and sweep over the metadata, then over the raw content store and the raw snapshotters (containerd's
 * GarbageCollect). The records and the content backend are swept holding the database lock exclusively; each raw
 * snapshotter whose records changed is swept after that, under its own lock only (containerd's cleanupSnapshotter
 * runs after wlock is released too), so that removing big trees holds back no content or lease writes.
 */
export class GarbageCollector {
  constructor(
    private readonly db: Database,
    private readonly raw: RawContentStore,
    private readonly snapshotters: ReadonlyMap<string, BackendSweeper> = new Map(),
  ) {}

  async collect(): Promise<GCStats> {
    const startedAt = new Date();
    const t0 = performance.now();
    const meta = await this.collectRecords();
    let orphanSnapshots = 0;
    const names = meta.dirtySnapshotters === 'all' ? [...this.snapshotters.keys()] : [...meta.dirtySnapshotters];
    for (const name of names) {
      const snapshotter = this.snapshotters.get(name);
      if (!snapshotter) continue;
      try {
        const removed = await snapshotter.sweepBackend();
        const swept = meta.swept.removedSnapshots.get(name);
        orphanSnapshots += removed.filter((key) => !swept?.has(key)).length;
      } catch (err) {
        // Left dirty: the next collection retries.
        this.db.markSnapshotterDirty(name);
        this.db.log.warn('snapshot garbage collection failed', { snapshotter: name, error: err });
      }
    }
    const stats: GCStats = {
      startedAt,
      durationMs: performance.now() - t0,
      removed: {
        content: meta.swept.content + meta.orphanBlobs,
        ingests: meta.swept.ingests + meta.orphanIngests,
        snapshots: meta.swept.snapshots + orphanSnapshots,
        leases: meta.swept.leases,
      },
    };
    this.db.log.debug('garbage collected', { d: `${stats.durationMs.toFixed(1)}ms`, ...stats.removed });
    return stats;
  }

  private collectRecords(): Promise<{
    swept: SweepResult;
    orphanBlobs: number;
    orphanIngests: number;
    dirtySnapshotters: ReadonlySet<string> | 'all';
  }> {
    return this.db.exclusive(async () => {
      let swept: SweepResult;
      try {
        swept = await this.db.txn((r) => {
          const marked = mark(r, Date.now(), (ns, lease, value) =>
            this.db.log.info('ignoring invalid lease expiration', { namespace: ns, lease, value }),
          );
          return sweep(r, marked);
        });
      } catch (err) {
        // The sweep could not commit (a full disk: removing records needs new pages too). Backend data that no
        // committed record names can still go, and freeing it is what lets the next collection commit.
        if (this.db.dirtyContent) await this.sweepBackend().then(
          () => (this.db.dirtyContent = false),
          (backendErr: unknown) => this.db.log.warn('content garbage collection failed', { error: backendErr }),
        );
        throw err;
      }
      this.db.dirty = 0;
      if (swept.content > 0 || swept.ingests > 0) this.db.dirtyContent = true;

      let orphanBlobs = 0;
      let orphanIngests = 0;
      if (this.db.dirtyContent) {
        try {
          const backend = await this.sweepBackend();
          orphanBlobs = backend.deleted.filter((d) => !swept.removedDigests.has(d)).length;
          orphanIngests = backend.aborted.filter((ref) => !swept.removedBackendRefs.has(ref)).length;
          this.db.dirtyContent = false;
        } catch (err) {
          // Left dirty: the next collection retries.
          this.db.log.warn('content garbage collection failed', { error: err });
        }
      }
      for (const name of swept.removedSnapshots.keys()) this.db.markSnapshotterDirty(name);
      const dirtySnapshotters = this.db.dirtySnapshotters;
      this.db.dirtySnapshotters = new Set();
      return { swept, orphanBlobs, orphanIngests, dirtySnapshotters };
    });
  }

  /** Deletes backend blobs no namespace records and aborts backend ingests no namespace owns. */
  private async sweepBackend(): Promise<{ deleted: string[]; aborted: string[] }> {
    const { digests, ingestRefs } = backendReferences(this.db.records);
    const ctx = { namespace: '' };
    const doomed: string[] = [];
    for await (const info of this.raw.list(ctx)) if (!digests.has(info.digest)) doomed.push(info.digest);
    const deleted: string[] = [];
    for (const digest of doomed) {
      try {
        await this.raw.delete(ctx, digest);
        deleted.push(digest);
        this.db.log.debug('removed content', { digest });
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
    }
    const aborted: string[] = [];
    for (const status of await this.raw.listStatuses(ctx)) {
      if (ingestRefs.has(status.ref)) continue;
      try {
        await this.raw.abort(ctx, status.ref);
        aborted.push(status.ref);
        this.db.log.debug('cleanup aborting ingest', { ref: status.ref });
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
    }
    return { deleted, aborted };
  }
}
