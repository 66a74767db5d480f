import { randomBytes } from 'node:crypto';
import { existsSync, renameSync } from 'node:fs';
import { chown, mkdir, readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import {
  AlreadyExistsError,
  FailedPreconditionError,
  NotFoundError,
  InvalidArgumentError,
  TimeSlice,
  adaptSnapshot,
  applyLabelUpdate,
  cleanLabels,
  fromSystemError,
  parseFilters,
  validateLabels,
  type Logger,
  type Mount,
  type OpContext,
  type RawSnapshotter,
  type SnapshotInfo,
  type SnapshotOptions,
  type SnapshotUsage,
} from '@berth/core';
import { snapshotMounts } from './mounts.js';
import { RecordStore, validateKey, type SnapshotRecord, type Txn } from './store.js';
import { diskUsage } from './usage.js';

/** containerd's label for the directory that holds a snapshot's changes (its `upperdir_label` option). */
export const UPPERDIR_LABEL = 'containerd.io/snapshot/overlay.upperdir';
/** The record store's file in the root (its lock file is `metadata.lmdb-lock`). */
export const RECORDS_FILE = 'metadata.lmdb';
/** Directories being created are `snapshots/new-<random>` until their record commits. */
const TEMP_PREFIX = 'new-';

export interface OverlaySnapshotterOptions {
  readonly root: string;
  readonly log: Logger;
  /** Options of every overlay mount before workdir/upperdir/lowerdir (what the probe settled on). */
  readonly mountOptions?: readonly string[];
  /** Adds UPPERDIR_LABEL to what Stat, Update and Walk return. */
  readonly upperdirLabel?: boolean;
}

const notFound = (key: string) => new NotFoundError(`snapshot ${key}: not found`);
const alreadyExists = (key: string) => new AlreadyExistsError(`snapshot ${key}: already exists`);

/**
 * containerd's overlay snapshotter (snapshots/overlay): each snapshot is `snapshots/<id>/fs` (its changes; the
 * upperdir while active, a lowerdir once committed) and, while active, `snapshots/<id>/work`; the records (key,
 * id, kind, parent, labels, times, the usage cached at commit) are in an LMDB environment of its own.
 *
 * Crash safety comes from ordering: a new snapshot's directory is built under a temporary name and renamed to its
 * id inside the transaction that writes its record, so a crash leaves at worst a directory without a record; a
 * removal deletes the record first and the directory after. Cleanup removes every directory no record names (and
 * no operation in progress owns).
 */
export class OverlaySnapshotter implements RawSnapshotter {
  readonly scope = 'raw' as const;
  readonly root: string;
  private readonly snapshotsDir: string;
  private readonly log: Logger;
  private readonly mountOptions: readonly string[];
  private readonly upperdirLabel: boolean;
  /** Entries of `snapshots/` that an operation in progress owns (its temporary dir, its new id): Cleanup keeps them. */
  private readonly pending = new Set<string>();

  private constructor(private readonly store: RecordStore, options: OverlaySnapshotterOptions) {
    this.root = options.root;
    this.snapshotsDir = join(options.root, 'snapshots');
    this.log = options.log;
    this.mountOptions = [...(options.mountOptions ?? [])];
    this.upperdirLabel = options.upperdirLabel ?? false;
  }

  static async open(options: OverlaySnapshotterOptions): Promise<OverlaySnapshotter> {
    await mkdir(join(options.root, 'snapshots'), { recursive: true, mode: 0o700 });
    const store = await RecordStore.open(join(options.root, RECORDS_FILE));
    return new OverlaySnapshotter(store, options);
  }

  upperPath(id: number): string {
    return join(this.snapshotsDir, String(id), 'fs');
  }

  workPath(id: number): string {
    return join(this.snapshotsDir, String(id), 'work');
  }

  async stat(_ctx: OpContext, key: string): Promise<SnapshotInfo> {
    validateKey(key, 'key');
    const record = this.store.get(key);
    if (!record) throw notFound(key);
    return this.info(key, record);
  }

  async update(
    _ctx: OpContext,
    info: Pick<SnapshotInfo, 'name'> & Partial<Pick<SnapshotInfo, 'labels'>>,
    fieldpaths?: readonly string[],
  ): Promise<SnapshotInfo> {
    const key = info.name;
    validateKey(key, 'name');
    return this.store.txn((txn) => {
      const record = txn.get(key);
      if (!record) throw notFound(key);
      const labels = applyLabelUpdate(record.labels, info.labels, fieldpaths, `snapshot ${JSON.stringify(key)}`);
      const next: SnapshotRecord = { ...record, labels, updatedAt: Date.now() };
      txn.put(key, next);
      return this.info(key, next);
    });
  }

  async usage(ctx: OpContext, key: string): Promise<SnapshotUsage> {
    validateKey(key, 'key');
    const record = this.store.get(key);
    if (!record) throw notFound(key);
    if (record.kind === 'active') return diskUsage(this.upperPath(record.id), ctx.signal);
    return { size: record.size ?? 0, inodes: record.inodes ?? 0 };
  }

  async mounts(_ctx: OpContext, key: string): Promise<Mount[]> {
    validateKey(key, 'key');
    const record = this.store.get(key);
    if (!record) throw notFound(key);
    if (record.kind === 'committed') {
      throw new FailedPreconditionError(`snapshot ${key} is committed, not active or view: failed precondition`);
    }
    return this.mountsOf(record, this.parentIds((k) => this.store.get(k), record));
  }

  prepare(ctx: OpContext, key: string, parent: string, options?: SnapshotOptions): Promise<Mount[]> {
    return this.create(ctx, 'active', key, parent, options);
  }

  view(ctx: OpContext, key: string, parent: string, options?: SnapshotOptions): Promise<Mount[]> {
    return this.create(ctx, 'view', key, parent, options);
  }

  async commit(ctx: OpContext, name: string, key: string, options?: SnapshotOptions): Promise<void> {
    validateKey(name, 'name');
    validateKey(key, 'key');
    const labels = checkedLabels(options?.labels);
    const active = this.store.get(key);
    if (!active) throw notFound(key);
    if (active.kind !== 'active') throw new FailedPreconditionError(`snapshot ${key} is not active: failed precondition`);
    if (this.store.get(name)) throw alreadyExists(name);
    // Computed before the transaction (it walks the tree); the transaction checks the snapshot is still the same.
    const usage = await diskUsage(this.upperPath(active.id), ctx.signal);
    await this.store.txn((txn) => {
      const current = txn.get(key);
      if (!current) throw notFound(key);
      if (current.id !== active.id || current.kind !== 'active') {
        throw new FailedPreconditionError(`snapshot ${key} changed while it was being committed: failed precondition`);
      }
      if (txn.get(name)) throw alreadyExists(name);
      const now = Date.now();
      // As containerd: the committed snapshot has the labels given to Commit, not those of the active one.
      txn.put(name, { id: current.id, kind: 'committed', parent: current.parent, labels, createdAt: now, updatedAt: now, ...usage });
      txn.remove(key);
      const parent = current.parent === '' ? undefined : txn.get(current.parent);
      if (parent) txn.link(parent.id, current.id, name);
    });
  }

  async remove(_ctx: OpContext, key: string): Promise<void> {
    validateKey(key, 'key');
    const id = await this.store.txn((txn) => {
      const record = txn.get(key);
      if (!record) throw notFound(key);
      if (txn.hasChildren(record.id)) {
        throw new FailedPreconditionError(`cannot remove snapshot ${key} with child: failed precondition`);
      }
      txn.remove(key);
      const parent = record.parent === '' ? undefined : txn.get(record.parent);
      if (parent) txn.unlink(parent.id, record.id);
      return record.id;
    });
    // The record is gone: whatever happens to the directory now, Cleanup finds what is left of it.
    await rm(join(this.snapshotsDir, String(id)), { recursive: true, force: true }).catch((err: unknown) =>
      this.log.warn('could not remove a snapshot directory', { path: join(this.snapshotsDir, String(id)), error: err }),
    );
  }

  async *walk(_ctx: OpContext, filters: readonly string[] = []): AsyncIterable<SnapshotInfo> {
    const filter = parseFilters(filters);
    const slice = new TimeSlice();
    for (const { key, record } of this.store.scan()) {
      const info = this.info(key, record);
      if (await filter.match(adaptSnapshot(info))) yield info;
      await slice.pause();
    }
  }

  async cleanup(_ctx: OpContext): Promise<void> {
    this.store.assertOpen();
    let names: string[];
    try {
      names = await readdir(this.snapshotsDir);
    } catch (err) {
      throw fromSystemError(err, 'open', this.snapshotsDir);
    }
    // In this order: an entry listed above is either still owned by an operation (pending now), or it was renamed
    // to an id whose record is committed by now (ids below), or nothing will ever point to it.
    const pending = new Set(this.pending);
    const ids = this.store.ids();
    for (const name of names) {
      if (ids.has(name) || pending.has(name)) continue;
      const path = join(this.snapshotsDir, name);
      this.log.debug('removing a snapshot directory without a record', { path });
      await rm(path, { recursive: true, force: true }).catch((err: unknown) => this.log.warn('could not remove a directory', { path, error: err }));
    }
  }

  /** Closes the record store (after its pending writes). Idempotent; every call after it is UnavailableError. */
  async close(): Promise<void> {
    await this.store.close();
  }

  private async create(_ctx: OpContext, kind: 'active' | 'view', key: string, parent: string, options?: SnapshotOptions): Promise<Mount[]> {
    validateKey(key, 'key');
    if (parent !== '') validateKey(parent, 'parent');
    const labels = checkedLabels(options?.labels);
    // Checked first so that a doomed request builds no directory; the transaction checks again.
    if (this.store.get(key)) throw alreadyExists(key);
    const parentRecord = parent === '' ? undefined : this.checkedParent(parent, this.store.get(parent));

    // Named here and marked pending before it exists, so that Cleanup never sees it unowned.
    const tempName = `${TEMP_PREFIX}${randomBytes(8).toString('hex')}`;
    const temp = join(this.snapshotsDir, tempName);
    this.pending.add(tempName);
    let id: number | undefined;
    try {
      await mkdir(temp, { mode: 0o700 });
      await mkdir(join(temp, 'fs'), { mode: 0o755 });
      if (kind === 'active') await mkdir(join(temp, 'work'), { mode: 0o711 });
      if (parentRecord) {
        // The root of the mounted tree is the upperdir: give it the owner of the layer below, as containerd does.
        const below = await stat(this.upperPath(parentRecord.id));
        await chown(join(temp, 'fs'), below.uid, below.gid);
      }
      const parentIds = await this.store.txn((txn) => {
        if (txn.get(key)) throw alreadyExists(key);
        const p = parent === '' ? undefined : this.checkedParent(parent, txn.get(parent));
        const chain = p ? [p.id, ...this.parentIds((k) => txn.get(k), p)] : [];
        let next = txn.nextId();
        // A crash between the rename and the commit leaves `snapshots/<id>` without a record and the id unused.
        while (existsSync(join(this.snapshotsDir, String(next)))) next = txn.nextId();
        const now = Date.now();
        txn.put(key, { id: next, kind, parent, labels, createdAt: now, updatedAt: now });
        if (p) txn.link(p.id, next, key);
        renameSync(temp, join(this.snapshotsDir, String(next)));
        id = next;
        this.pending.add(String(next));
        return chain;
      });
      return snapshotMounts(kind, id!, parentIds, this, this.mountOptions);
    } catch (err) {
      // Renamed but not committed (the commit failed): the directory goes, and its id is handed out again.
      const leftover = id === undefined ? temp : join(this.snapshotsDir, String(id));
      await rm(leftover, { recursive: true, force: true }).catch((rmErr: unknown) =>
        this.log.warn('could not remove the directory of a snapshot that was not created', { path: leftover, error: rmErr }),
      );
      throw fromSystemError(err);
    } finally {
      this.pending.delete(tempName);
      if (id !== undefined) this.pending.delete(String(id));
    }
  }

  private checkedParent(parent: string, record: SnapshotRecord | undefined): SnapshotRecord {
    if (!record) throw new NotFoundError(`parent snapshot ${parent}: not found`);
    // containerd's storage calls this an invalid argument (the contract in @berth/core follows it).
    if (record.kind !== 'committed') throw new InvalidArgumentError(`parent ${JSON.stringify(parent)} is not a committed snapshot: invalid argument`);
    return record;
  }

  /** The ids of the snapshot's parents, nearest first. */
  private parentIds(get: Txn['get'], record: SnapshotRecord): number[] {
    const ids: number[] = [];
    for (let key = record.parent; key !== ''; ) {
      const parent = get(key);
      if (!parent) throw new NotFoundError(`parent snapshot ${key} of a snapshot: not found`);
      ids.push(parent.id);
      key = parent.parent;
    }
    return ids;
  }

  private mountsOf(record: SnapshotRecord, parentIds: readonly number[]): Mount[] {
    return snapshotMounts(record.kind, record.id, parentIds, this, this.mountOptions);
  }

  private info(key: string, record: SnapshotRecord): SnapshotInfo {
    const labels = this.upperdirLabel ? { ...record.labels, [UPPERDIR_LABEL]: this.upperPath(record.id) } : { ...record.labels };
    return {
      kind: record.kind,
      name: key,
      parent: record.parent,
      labels,
      createdAt: new Date(record.createdAt),
      updatedAt: new Date(record.updatedAt),
    };
  }
}

function checkedLabels(labels: SnapshotOptions['labels']): Record<string, string> {
  const cleaned = cleanLabels(labels);
  validateLabels(cleaned);
  return cleaned;
}
