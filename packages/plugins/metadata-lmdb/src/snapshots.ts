import { publishEvent } from '@berth/api';
import {
  adaptSnapshot,
  AlreadyExistsError,
  FailedPreconditionError,
  InvalidArgumentError,
  isAlreadyExists,
  isFailedPrecondition,
  isNotFound,
  isNotImplemented,
  NotFoundError,
  parseFilters,
  SNAPSHOT_REF_LABEL,
  TimeSlice,
  UnavailableError,
  UnknownError,
  type EventPublisher,
  type Labels,
  type Mount,
  type OpContext,
  type RawSnapshotter,
  type SnapshotInfo,
  type SnapshotOptions,
  type Snapshotter,
  type SnapshotterSet,
  type SnapshotUsage,
} from '@berth/core';
import type { Database } from './database.js';
import { KeyedLock } from './keyed-lock.js';
import { applyLabelUpdate, cleanLabels, labelsLostSomething } from './labels.js';
import { addToContextLease, checkContextLease, removeFromContextLease, requireNamespace } from './leases.js';
import { ensureNamespace } from './namespaces.js';
import { RWLock } from './rwlock.js';
import { depth, keys, type SnapshotRecord } from './schema.js';
import { validateKeyPart, validateLabels } from './validate.js';

/** Labels with this prefix (and the snapshot.ref label) are passed down to the backend, as containerd does. */
export const INHERITED_LABELS_PREFIX = 'containerd.io/snapshot/';

/** The labels the backend gets (containerd's snapshots.FilterInheritedLabels). */
export function inheritedLabels(labels: Labels): Labels {
  return Object.fromEntries(Object.entries(labels).filter(([k]) => k === SNAPSHOT_REF_LABEL || k.startsWith(INHERITED_LABELS_PREFIX)));
}

function snapshotNotFound(key: string): NotFoundError {
  return new NotFoundError(`snapshot ${key} does not exist`);
}

/** The backend ignores namespaces and knows nothing of leases. */
function rawContext(ctx: OpContext): OpContext {
  return { namespace: ctx.namespace, ...(ctx.signal ? { signal: ctx.signal } : {}) };
}

/** A name that can be a record key; anything else cannot exist, so reads of it are NotFound. */
function isKeyPart(s: string): boolean {
  return s.length > 0 && !s.includes('\0') && Buffer.byteLength(s) <= 1024;
}

/** containerd's overlayInfo: the backend's kind and labels, the record's name, parent, labels and times. */
function overlay(info: SnapshotInfo, key: string, record: SnapshotRecord): SnapshotInfo {
  return {
    kind: info.kind,
    name: key,
    parent: record.parent ?? '',
    labels: { ...info.labels, ...record.labels },
    createdAt: new Date(record.createdAt),
    updatedAt: new Date(record.updatedAt),
  };
}

/** What the GC's backend phase needs of a snapshotter. */
export interface BackendSweeper {
  /** Removes the backend snapshots no record names, then runs the backend's cleanup; returns the removed keys. */
  sweepBackend(): Promise<string[]>;
}

/**
 * One raw snapshotter as every namespace sees it (containerd's metadata snapshotter): records per namespace in
 * LMDB, backend keys `<namespace>/<counter>/<key>`, parent and child links, labels, lease membership and events.
 *
 * Locking, as containerd's `s.l`: every mutation holds `lock` shared for its whole duration (its transactions and
 * the backend calls between them), and takes its names in a KeyedLock; the backend sweep of the garbage collector
 * (and cleanup) holds `lock` exclusively, so it never sees a backend snapshot whose record is about to be written.
 * A remove drops the record only; the backend snapshot goes at the next sweep, as in containerd.
 */
export class LmdbSnapshotter implements Snapshotter, BackendSweeper {
  readonly scope = 'namespaced' as const;
  readonly lock = new RWLock();
  private readonly names = new KeyedLock();
  private closed = false;

  constructor(
    readonly name: string,
    private readonly raw: RawSnapshotter,
    private readonly db: Database,
    private readonly events: EventPublisher | undefined,
  ) {}

  private get resourceType(): string {
    return `snapshots/${this.name}`;
  }

  private lookup(ns: string, key: string): SnapshotRecord | undefined {
    this.db.assertOpen();
    return isKeyPart(key) ? this.db.records.get<SnapshotRecord>(keys.snapshot(ns, this.name, key)) : undefined;
  }

  private backendKey(ctx: OpContext, key: string): string {
    const record = this.lookup(requireNamespace(ctx), key);
    if (!record) throw snapshotNotFound(key);
    return record.name;
  }

  async stat(ctx: OpContext, key: string): Promise<SnapshotInfo> {
    const record = this.lookup(requireNamespace(ctx), key);
    if (!record) throw snapshotNotFound(key);
    return overlay(await this.raw.stat(rawContext(ctx), record.name), key, record);
  }

  async update(
    ctx: OpContext,
    info: Pick<SnapshotInfo, 'name'> & Partial<Pick<SnapshotInfo, 'labels'>>,
    fieldpaths?: readonly string[],
  ): Promise<SnapshotInfo> {
    const ns = requireNamespace(ctx);
    if (!info.name) throw new InvalidArgumentError('snapshot name must not be empty');
    return this.mutation(ns, [info.name], async () => {
      const record = this.lookup(ns, info.name);
      if (!record) throw snapshotNotFound(info.name);
      const labels = applyLabelUpdate(record.labels ?? {}, info.labels, fieldpaths, `snapshot ${JSON.stringify(info.name)}`);
      // The backend keeps the inherited labels only; it gets the same paths (containerd passes them through).
      const backend = await this.raw.update(rawContext(ctx), { name: record.name, labels: inheritedLabels(labels) }, fieldpaths);
      const next: SnapshotRecord = { ...record, labels, updatedAt: Date.now() };
      const key = keys.snapshot(ns, this.name, info.name);
      await this.db.update(
        (r) => {
          if (r.get<SnapshotRecord>(key)?.name !== record.name) throw snapshotNotFound(info.name);
          r.put(key, next);
          return labelsLostSomething(record.labels ?? {}, labels);
        },
        // Dropping a gc.ref/gc.root label can make something collectable.
        (lost) => (lost ? 'delete' : 'write'),
      );
      return overlay(backend, info.name, next);
    });
  }

  async usage(ctx: OpContext, key: string): Promise<SnapshotUsage> {
    return this.raw.usage(rawContext(ctx), this.backendKey(ctx, key));
  }

  async mounts(ctx: OpContext, key: string): Promise<Mount[]> {
    return this.raw.mounts(rawContext(ctx), this.backendKey(ctx, key));
  }

  prepare(ctx: OpContext, key: string, parent: string, options?: SnapshotOptions): Promise<Mount[]> {
    return this.create(ctx, key, parent, false, options);
  }

  view(ctx: OpContext, key: string, parent: string, options?: SnapshotOptions): Promise<Mount[]> {
    return this.create(ctx, key, parent, true, options);
  }

  /**
   * containerd's createSnapshot: a transaction checks the names and allocates the backend key, the backend makes
   * the snapshot, a second transaction writes the record (with its lease and the parent's child link). A failure
   * after the backend made it removes it again.
   */
  private async create(ctx: OpContext, key: string, parent: string, readonly: boolean, options?: SnapshotOptions): Promise<Mount[]> {
    const ns = requireNamespace(ctx);
    validateKeyPart(key, 'snapshot key');
    if (parent) validateKeyPart(parent, 'parent snapshot key');
    validateLabels(options?.labels);
    const labels = cleanLabels(options?.labels);
    const target = labels[SNAPSHOT_REF_LABEL];
    if (target !== undefined) validateKeyPart(target, 'target snapshot');
    const rc = rawContext(ctx);

    const mounts = await this.mutation(ns, target ? [key, target] : [key], async () => {
      const { bkey, bparent } = await this.db.update((r) => {
        checkContextLease(r, ctx);
        if (target && r.has(keys.snapshot(ns, this.name, target))) throw new AlreadyExistsError(`target snapshot ${JSON.stringify(target)}`);
        if (r.has(keys.snapshot(ns, this.name, key))) throw new AlreadyExistsError(`snapshot ${JSON.stringify(key)}`);
        let bparent = '';
        if (parent) {
          const p = r.get<SnapshotRecord>(keys.snapshot(ns, this.name, parent));
          if (!p) throw new NotFoundError(`parent snapshot ${parent} does not exist`);
          bparent = p.name;
        }
        return { bkey: `${ns}/${this.db.nextSnapshotSequence(r)}/${key}`, bparent };
      });
      if (bparent && (await this.raw.stat(rc, bparent)).kind !== 'committed') {
        throw new InvalidArgumentError(`parent snapshot ${parent} is not committed`);
      }

      let mounts: Mount[] = [];
      let created = '';
      let record: SnapshotRecord;
      let recordKey = key;
      let outcome: Error | undefined;
      try {
        const backendOptions = { labels: inheritedLabels(labels) };
        mounts = readonly ? await this.raw.view(rc, bkey, bparent, backendOptions) : await this.raw.prepare(rc, bkey, bparent, backendOptions);
        created = bkey;
        const now = Date.now();
        record = { name: bkey, ...(parent ? { parent } : {}), labels, createdAt: now, updatedAt: now };
      } catch (err) {
        if (!isAlreadyExists(err)) throw err;
        // The key is new to the backend: only a target the backend already has explains AlreadyExists.
        if (!target) throw new UnknownError(`unexpected error from snapshotter: ${(err as Error).message}`, { cause: err });
        const existing = await this.findTarget(rc, target, bparent);
        recordKey = target;
        record = {
          name: existing.name,
          ...(parent ? { parent } : {}),
          labels: { ...existing.labels, ...labels },
          createdAt: existing.createdAt.getTime(),
          updatedAt: existing.updatedAt.getTime(),
        };
        outcome = new AlreadyExistsError(`target snapshot ${JSON.stringify(target)} from snapshotter`);
      }

      try {
        await this.db.update((r) => {
          const k = keys.snapshot(ns, this.name, recordKey);
          if (r.has(k)) throw new AlreadyExistsError(`snapshot ${JSON.stringify(recordKey)}`);
          if (parent) {
            const p = r.get<SnapshotRecord>(keys.snapshot(ns, this.name, parent));
            if (!p) throw new NotFoundError(`parent snapshot ${parent} does not exist`);
            // A target the backend found must sit on the parent the client named.
            if (p.name !== bparent) throw new InvalidArgumentError(`mismatched parent ${parent} from target ${target ?? ''}`);
            r.put(keys.snapshotChild(ns, this.name, parent, recordKey), true);
          }
          ensureNamespace(r, ns);
          addToContextLease(r, ctx, { type: this.resourceType, id: recordKey });
          r.put(k, record);
        });
      } catch (err) {
        if (created) await this.removeCreated(rc, created);
        throw err;
      }
      if (outcome) throw outcome;
      return mounts;
    });
    if (!readonly && this.events) {
      await publishEvent(this.events, ns, '/snapshot/prepare', 'containerd.events.SnapshotPrepare', { key, parent });
    }
    return mounts;
  }

  /** The committed backend snapshot labelled with `target` on `bparent` (containerd walks with this filter). */
  private async findTarget(rc: OpContext, target: string, bparent: string): Promise<SnapshotInfo> {
    const filter = `labels."${SNAPSHOT_REF_LABEL}"==${JSON.stringify(target)},parent==${JSON.stringify(bparent)}`;
    for await (const info of this.raw.walk(rc, [filter])) {
      // The filter may not be honoured by every backend: check again.
      if (info.kind === 'committed' && info.labels[SNAPSHOT_REF_LABEL] === target && info.parent === bparent) return info;
    }
    throw new NotFoundError(`target snapshot ${JSON.stringify(target)} in backend`);
  }

  private async removeCreated(rc: OpContext, bkey: string): Promise<void> {
    try {
      await this.raw.remove(rc, bkey);
    } catch (err) {
      // The next backend sweep removes it.
      this.db.markSnapshotterDirty(this.name);
      this.db.log.error('failed to clean up unreferenced snapshot', { snapshotter: this.name, key: bkey, error: err });
    }
  }

  async commit(ctx: OpContext, name: string, key: string, options?: SnapshotOptions): Promise<void> {
    const ns = requireNamespace(ctx);
    validateKeyPart(name, 'snapshot name');
    validateKeyPart(key, 'snapshot key');
    validateLabels(options?.labels);
    const labels = cleanLabels(options?.labels);
    const rc = rawContext(ctx);
    await this.mutation(ns, [name, key], async () => {
      const { record, nameKey } = await this.db.update((r) => {
        checkContextLease(r, ctx);
        if (r.has(keys.snapshot(ns, this.name, name))) throw new AlreadyExistsError(`snapshot ${JSON.stringify(name)}`);
        const record = r.get<SnapshotRecord>(keys.snapshot(ns, this.name, key));
        if (!record) throw snapshotNotFound(key);
        return { record, nameKey: `${ns}/${this.db.nextSnapshotSequence(r)}/${name}` };
      });
      if ((await this.raw.stat(rc, record.name)).kind !== 'active') throw new FailedPreconditionError(`snapshot ${key} is not active`);
      // As containerd: only the labels given to commit are kept, not those of the active snapshot.
      await this.raw.commit(rc, nameKey, record.name, { labels: inheritedLabels(labels) });
      try {
        await this.db.update((r) => {
          const from = keys.snapshot(ns, this.name, key);
          if (r.get<SnapshotRecord>(from)?.name !== record.name) throw snapshotNotFound(key);
          const now = Date.now();
          ensureNamespace(r, ns);
          r.put(keys.snapshot(ns, this.name, name), {
            name: nameKey,
            ...(record.parent ? { parent: record.parent } : {}),
            labels,
            createdAt: now,
            updatedAt: now,
          } satisfies SnapshotRecord);
          if (record.parent) {
            r.remove(keys.snapshotChild(ns, this.name, record.parent, key));
            r.put(keys.snapshotChild(ns, this.name, record.parent, name), true);
          }
          r.removeTree(from);
          removeFromContextLease(r, ctx, { type: this.resourceType, id: key });
          addToContextLease(r, ctx, { type: this.resourceType, id: name });
        });
      } catch (err) {
        // The backend has committed `nameKey` and no record names it: the next sweep removes it.
        this.db.markSnapshotterDirty(this.name);
        this.db.log.error('uncommittable snapshot: transaction failed after commit, snapshot should be removed', {
          snapshotter: this.name,
          key,
          bname: nameKey,
          error: err,
        });
        throw err;
      }
    });
    if (this.events) await publishEvent(this.events, ns, '/snapshot/commit', 'containerd.events.SnapshotCommit', { key, name });
  }

  async remove(ctx: OpContext, key: string): Promise<void> {
    const ns = requireNamespace(ctx);
    if (!isKeyPart(key)) throw snapshotNotFound(key);
    await this.mutation(ns, [key], () =>
      this.db.update((r) => {
        const k = keys.snapshot(ns, this.name, key);
        const record = r.get<SnapshotRecord>(k);
        if (!record) throw snapshotNotFound(key);
        if (r.hasBelow(keys.snapshotChildren(ns, this.name, key), depth.snapshotChild)) {
          throw new FailedPreconditionError('cannot remove snapshot with child');
        }
        if (record.parent) r.remove(keys.snapshotChild(ns, this.name, record.parent, key));
        r.removeTree(k);
        removeFromContextLease(r, ctx, { type: this.resourceType, id: key });
        this.db.markSnapshotterDirty(this.name);
      }, 'delete'),
    );
    if (this.events) await publishEvent(this.events, ns, '/snapshot/remove', 'containerd.events.SnapshotRemove', { key });
  }

  /**
   * The namespace's snapshots matching any filter (`kind`, `name`, `parent`, `labels.*`), each merged with the
   * backend's info, from one LMDB snapshot taken when the walk starts. A record whose backend snapshot is gone is
   * left out, as containerd does. The walk lets the event loop run every few milliseconds.
   */
  async *walk(ctx: OpContext, filters: readonly string[] = []): AsyncIterable<SnapshotInfo> {
    const ns = requireNamespace(ctx);
    const filter = parseFilters(filters);
    this.db.assertOpen();
    const rc = rawContext(ctx);
    const slice = new TimeSlice();
    for (const { key, value } of this.db.records.scan<SnapshotRecord>(keys.snapshotter(ns, this.name), depth.snapshot)) {
      let backend: SnapshotInfo;
      try {
        backend = await this.raw.stat(rc, value.name);
      } catch (err) {
        if (isNotFound(err)) continue;
        throw err;
      }
      const info = overlay(backend, key[4]!, value);
      if (await filter.match(adaptSnapshot(info))) yield info;
      await slice.pause();
    }
  }

  /** Removes backend snapshots no record of any namespace names, then lets the backend clean up. */
  cleanup(_ctx: OpContext): Promise<void> {
    return this.sweepBackend().then(() => undefined);
  }

  /**
   * The backend half of garbage collection (containerd's snapshotter.garbageCollect): holding `lock` exclusively,
   * walks the backend and removes, children first, every snapshot that no record names; a snapshot the backend
   * refuses to remove (it still has children) is logged and left. Then calls the backend's cleanup, which removes
   * whatever its own records no longer name (directories a crash left behind).
   */
  sweepBackend(): Promise<string[]> {
    return this.lock.exclusive(async () => {
      this.assertOpen();
      const referenced = this.backendNames();
      const ctx: OpContext = { namespace: '' };
      const children = new Map<string, string[]>();
      const all = new Set<string>();
      const parents = new Map<string, string>();
      for await (const info of this.raw.walk(ctx)) {
        all.add(info.name);
        if (info.parent) {
          parents.set(info.name, info.parent);
          children.set(info.parent, [...(children.get(info.parent) ?? []), info.name]);
        }
      }
      // Post-order from every root (a snapshot whose parent the walk did not report counts as one).
      const order: string[] = [];
      for (const root of [...all].filter((n) => !all.has(parents.get(n) ?? ''))) {
        const stack: Array<{ name: string; expanded: boolean }> = [{ name: root, expanded: false }];
        while (stack.length > 0) {
          const top = stack.pop()!;
          if (top.expanded) {
            order.push(top.name);
            continue;
          }
          stack.push({ name: top.name, expanded: true });
          for (const child of children.get(top.name) ?? []) stack.push({ name: child, expanded: false });
        }
      }
      const removed: string[] = [];
      for (const name of order) {
        if (referenced.has(name)) continue;
        try {
          await this.raw.remove(ctx, name);
          removed.push(name);
          this.db.log.debug('removed snapshot', { snapshotter: this.name, key: name });
        } catch (err) {
          if (isNotFound(err)) continue;
          if (!isFailedPrecondition(err)) throw err;
          this.db.log.warn('failed to remove snapshot', { snapshotter: this.name, key: name, error: err });
        }
      }
      try {
        await this.raw.cleanup(ctx);
      } catch (err) {
        if (!isNotImplemented(err)) throw err;
      }
      return removed;
    });
  }

  /** Every backend key a record of this snapshotter names, in any namespace (one consistent read). */
  private backendNames(): Set<string> {
    const names = new Set<string>();
    const r = this.db.records;
    for (const ns of r.childNames(keys.root)) {
      for (const { value } of r.entries<SnapshotRecord>(keys.snapshotter(ns, this.name), depth.snapshot)) {
        if (value.name) names.add(value.name);
      }
    }
    return names;
  }

  /** Runs a mutation of `names` in namespace `ns`: this snapshotter's lock shared, then the names. */
  private mutation<T>(ns: string, names: readonly string[], fn: () => Promise<T>): Promise<T> {
    return this.lock.shared(() => {
      this.assertOpen();
      return this.names.run(
        names.map((n) => `${ns}\0${n}`),
        fn,
      );
    });
  }

  private assertOpen(): void {
    if (this.closed) throw new UnavailableError(`snapshotter ${this.name} is closed`);
    this.db.assertOpen();
  }

  /** Waits for running mutations and sweeps; later calls fail with Unavailable. Idempotent. */
  async close(): Promise<void> {
    await this.lock.exclusive(async () => {
      this.closed = true;
    });
  }
}

/** The namespaced snapshotters by name (snapshottersToken). */
export class LmdbSnapshotterSet implements SnapshotterSet {
  constructor(private readonly byName: ReadonlyMap<string, LmdbSnapshotter>) {}

  get(name: string): LmdbSnapshotter {
    const snapshotter = this.byName.get(name);
    if (!snapshotter) throw new NotFoundError(`snapshotter ${name} was not found`);
    return snapshotter;
  }

  names(): readonly string[] {
    return [...this.byName.keys()];
  }
}
