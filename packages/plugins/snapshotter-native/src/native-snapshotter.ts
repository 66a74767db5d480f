/**
 * containerd's native snapshotter (snapshots/native): every active snapshot is a directory of its own, a full copy
 * of its parent's tree made at Prepare, handed out as a bind mount. Views of a committed snapshot bind the parent's
 * directory read-only (no copy); Commit only changes the record. The records live in one JSON file (records.ts).
 *
 * Order on disk, so that a crash (SIGKILL) at any point leaves nothing that Cleanup cannot remove and no record
 * without its directory:
 * - Prepare: reserve the key and an id (memory only), make `snapshots/new-<random>`, copy the parent into it,
 *   rename it to `snapshots/<id>`, then write the record. Killed before the record: a `new-*` or an unrecorded
 *   `<id>` directory, both removed by Cleanup; the key was never created.
 * - Remove: write the records without it, rename `snapshots/<id>` to `snapshots/rm-<id>`, then delete that tree.
 *   Killed in between: an unrecorded `<id>` or an `rm-*` directory, removed by Cleanup.
 * - Commit: measure the usage, then one record write (the directory stays where it is).
 * Ids are never reused (the next one is above every id recorded and every directory found at open).
 *
 * Long work (the copy, a usage walk, deleting a tree) runs outside the mutex that orders record changes, so one
 * slow Prepare never holds up the others; a key being prepared is reserved, and a parent with a child being
 * prepared cannot be removed.
 */
import { chmod, mkdir, readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import {
  AlreadyExistsError,
  FailedPreconditionError,
  InvalidArgumentError,
  Mutex,
  NotFoundError,
  TMP_SUFFIX,
  UnavailableError,
  adaptSnapshot,
  applyLabelUpdate,
  cleanLabels,
  hasErrno,
  nullLogger,
  parseFilters,
  validateLabels,
  type Logger,
  type Mount,
  type OpContext,
  type RawSnapshotter,
  type SnapshotInfo,
  type SnapshotKind,
  type SnapshotOptions,
  type SnapshotUsage,
} from '@berth/core';
import { copyTree } from './copy.js';
import { RecordStore, type SnapshotRecord } from './records.js';
import { diskUsage } from './usage.js';

export interface NativeSnapshotterOptions {
  /** The snapshotter's directory: `metadata.json` and `snapshots/` go in it. */
  readonly root: string;
  readonly log?: Logger;
}

const NEW_PREFIX = 'new-';
const RM_PREFIX = 'rm-';

/** A Prepare or View between its reservation and its record. */
interface Pending {
  readonly id: string;
  readonly parent: string;
}

export class NativeSnapshotter implements RawSnapshotter {
  readonly scope = 'raw' as const;
  private readonly mutex = new Mutex();
  private readonly pending = new Map<string, Pending>();
  /** `new-*` directories being filled, which Cleanup must leave alone. */
  private readonly filling = new Set<string>();
  private closed = false;

  private constructor(
    readonly root: string,
    private readonly records: RecordStore,
    private readonly log: Logger,
  ) {}

  static async open(options: NativeSnapshotterOptions): Promise<NativeSnapshotter> {
    const { root } = options;
    await mkdir(join(root, 'snapshots'), { recursive: true, mode: 0o700 });
    await chmod(root, 0o700);
    const records = await RecordStore.open(root);
    // Above every directory a crashed run may have left, so that a fresh id never lands on its debris.
    const ids = (await readdir(join(root, 'snapshots'))).map((n) => /^(?:new-|rm-)?([0-9]+)$/.exec(n)?.[1]).filter((n) => n !== undefined);
    records.reserveUpTo(Math.max(0, ...ids.map(Number)));
    return new NativeSnapshotter(root, records, options.log ?? nullLogger);
  }

  private dir(id: string): string {
    return join(this.root, 'snapshots', id);
  }

  private check(): void {
    if (this.closed) throw new UnavailableError('the native snapshotter is closed');
  }

  private record(key: string): SnapshotRecord {
    this.check();
    const r = this.records.get(key);
    if (!r) throw new NotFoundError(`snapshot ${key} does not exist`);
    return r;
  }

  private inUse(key: string): boolean {
    return this.records.get(key) !== undefined || this.pending.has(key);
  }

  async stat(_ctx: OpContext, key: string): Promise<SnapshotInfo> {
    return infoOf(this.record(key));
  }

  async update(_ctx: OpContext, info: Pick<SnapshotInfo, 'name'> & Partial<Pick<SnapshotInfo, 'labels'>>, fieldpaths?: readonly string[]): Promise<SnapshotInfo> {
    return this.mutex.run(async () => {
      const r = this.record(info.name);
      const labels = applyLabelUpdate(r.labels, info.labels, fieldpaths, `snapshot ${JSON.stringify(info.name)}`);
      const next = { ...r, labels, updatedAt: new Date().toISOString() };
      await this.records.change([next]);
      return infoOf(next);
    });
  }

  async usage(_ctx: OpContext, key: string): Promise<SnapshotUsage> {
    const r = this.record(key);
    // As containerd's native: measured for active snapshots, stored at commit for committed ones (views: zero).
    if (r.kind !== 'active') return { size: r.size, inodes: r.inodes };
    return diskUsage(this.dir(r.id));
  }

  async mounts(_ctx: OpContext, key: string): Promise<Mount[]> {
    const r = this.record(key);
    if (r.kind === 'committed') throw new FailedPreconditionError(`snapshot ${key} is not active or view`);
    return this.mountsOf(r);
  }

  private mountsOf(r: Pick<SnapshotRecord, 'id' | 'kind' | 'parent'>): Mount[] {
    const source = r.kind === 'view' && r.parent !== '' ? this.dir(this.records.get(r.parent)!.id) : this.dir(r.id);
    return [{ type: 'bind', source, options: ['rbind', r.kind === 'view' ? 'ro' : 'rw'] }];
  }

  prepare(ctx: OpContext, key: string, parent: string, options?: SnapshotOptions): Promise<Mount[]> {
    return this.create(ctx, 'active', key, parent, options);
  }

  view(ctx: OpContext, key: string, parent: string, options?: SnapshotOptions): Promise<Mount[]> {
    return this.create(ctx, 'view', key, parent, options);
  }

  private async create(ctx: OpContext, kind: 'active' | 'view', key: string, parent: string, options?: SnapshotOptions): Promise<Mount[]> {
    if (key === '') throw new InvalidArgumentError('snapshot key must not be empty');
    ctx.signal?.throwIfAborted();
    const labels = cleanLabels(options?.labels);
    validateLabels(labels);
    const { id, parentId } = await this.mutex.run(() => {
      this.check();
      if (this.inUse(key)) throw new AlreadyExistsError(`snapshot ${key}: already exists`);
      let parentId: string | undefined;
      if (parent !== '') {
        const p = this.records.get(parent);
        if (!p) throw new NotFoundError(`parent snapshot ${parent} does not exist`);
        if (p.kind !== 'committed') throw new InvalidArgumentError(`parent ${parent} is not a committed snapshot`);
        parentId = p.id;
      }
      const id = this.records.allocateId();
      this.pending.set(key, { id, parent });
      return { id, parentId };
    });
    let made: string | undefined;
    try {
      // A view of a committed snapshot binds the parent's own directory: nothing to make.
      if (kind === 'active' || parentId === undefined) {
        // Named by the id (unique), and listed as being filled before it exists, so a concurrent Cleanup skips it.
        const tmp = join(this.root, 'snapshots', `${NEW_PREFIX}${id}`);
        this.filling.add(tmp);
        made = tmp;
        try {
          await mkdir(tmp, { mode: 0o700 });
          await chmod(tmp, 0o755);
          if (parentId !== undefined) await copyTree(this.dir(parentId), tmp, ctx.signal);
          await rename(tmp, this.dir(id));
          made = this.dir(id);
        } finally {
          this.filling.delete(tmp);
        }
      }
      const now = new Date().toISOString();
      const r: SnapshotRecord = { key, id, kind, parent, labels, createdAt: now, updatedAt: now, size: 0, inodes: 0 };
      await this.mutex.run(async () => {
        this.check();
        await this.records.change([r]);
      });
      made = undefined;
      return this.mountsOf(r);
    } finally {
      this.pending.delete(key);
      if (made !== undefined) await rm(made, { recursive: true, force: true }).catch((err: unknown) => this.log.warn('could not remove a failed snapshot', { path: made, error: err }));
    }
  }

  async commit(_ctx: OpContext, name: string, key: string, options?: SnapshotOptions): Promise<void> {
    if (name === '') throw new InvalidArgumentError('snapshot name must not be empty');
    const labels = cleanLabels(options?.labels);
    validateLabels(labels);
    const validate = () => {
      this.check();
      if (this.inUse(name)) throw new AlreadyExistsError(`snapshot ${name}: already exists`);
      const r = this.record(key);
      if (r.kind !== 'active') throw new FailedPreconditionError(`snapshot ${key} is not active`);
      return r;
    };
    const r = validate();
    // Measured before taking the mutex (it walks the whole tree); the snapshot is finished, nothing writes to it.
    const used = await diskUsage(this.dir(r.id));
    await this.mutex.run(async () => {
      const now = validate();
      const at = new Date().toISOString();
      const done: SnapshotRecord = { ...now, key: name, kind: 'committed', labels, createdAt: at, updatedAt: at, size: used.size, inodes: used.inodes };
      await this.records.change([done], [key]);
    });
  }

  async remove(_ctx: OpContext, key: string): Promise<void> {
    const doomed = await this.mutex.run(async () => {
      const r = this.record(key);
      const pendingChild = [...this.pending.values()].some((p) => p.parent === key);
      if (pendingChild || this.records.hasChildren(key)) throw new FailedPreconditionError(`cannot remove snapshot ${key} with child`);
      await this.records.change([], [key]);
      const rmDir = this.dir(`${RM_PREFIX}${r.id}`);
      try {
        await rename(this.dir(r.id), rmDir);
        return rmDir;
      } catch (err) {
        if (hasErrno(err, 'ENOENT')) return undefined; // a view of a committed snapshot has no directory
        this.log.warn('could not move a removed snapshot aside; Cleanup will remove it', { key, id: r.id, error: err });
        return undefined;
      }
    });
    if (doomed) {
      await rm(doomed, { recursive: true, force: true }).catch((err: unknown) =>
        this.log.warn('could not delete a removed snapshot; Cleanup will retry', { path: doomed, error: err }),
      );
    }
  }

  async *walk(_ctx: OpContext, filters?: readonly string[]): AsyncIterable<SnapshotInfo> {
    this.check();
    const filter = parseFilters(filters ?? []);
    for (const r of this.records.all()) {
      const info = infoOf(r);
      if (await filter.match(adaptSnapshot(info))) yield info;
    }
  }

  /**
   * Removes every directory under `snapshots/` that no record names: interrupted Prepares (`new-*`, or an `<id>`
   * renamed but never recorded), interrupted Removes (`rm-*`, or an `<id>` whose record is gone), and leftover
   * temporary record files. Snapshots being prepared right now are left alone.
   */
  async cleanup(_ctx: OpContext): Promise<void> {
    const doomed = await this.mutex.run(async () => {
      this.check();
      const kept = new Set<string>();
      for (const r of this.records.all()) kept.add(r.id);
      for (const p of this.pending.values()) kept.add(p.id);
      const dir = join(this.root, 'snapshots');
      const out: string[] = [];
      for (const name of await readdir(dir)) {
        const path = join(dir, name);
        if (!kept.has(name) && !this.filling.has(path)) out.push(path);
      }
      for (const name of await readdir(this.root)) if (name.endsWith(TMP_SUFFIX)) out.push(join(this.root, name));
      return out;
    });
    for (const path of doomed) {
      this.log.info('cleanup: removing what no snapshot record names', { path });
      await rm(path, { recursive: true, force: true });
    }
  }

  /** Waits for the record changes under way; afterwards every call fails with UnavailableError. Idempotent. */
  async close(): Promise<void> {
    this.closed = true;
    await this.mutex.idle();
  }
}

function infoOf(r: SnapshotRecord): SnapshotInfo {
  return {
    kind: r.kind as SnapshotKind,
    name: r.key,
    parent: r.parent,
    labels: { ...r.labels },
    createdAt: new Date(r.createdAt),
    updatedAt: new Date(r.updatedAt),
  };
}
