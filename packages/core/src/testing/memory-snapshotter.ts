/**
 * A raw snapshotter that keeps only records in memory, for the tests of what sits on one (the metadata plugin's
 * namespaced snapshotters, a service): kinds, parents, labels and the rules of containerd's storage (a committed
 * parent, commit of active snapshots only, no remove with children). Its mounts are fake bind mounts of paths that
 * do not exist, so it does not pass (and is not for) the snapshotter conformance suite. `calls` records every call,
 * `fail(method, err)` makes the next call of a method throw.
 */
import { AlreadyExistsError, FailedPreconditionError, InvalidArgumentError, NotFoundError } from '../errdefs/index.js';
import { parseFilters } from '../filters/filter.js';
import type { OpContext } from '../kinds/context.js';
import type { Mount, RawSnapshotter, SnapshotInfo, SnapshotKind, SnapshotOptions, SnapshotUsage } from '../kinds/snapshots.js';
import { applyLabelUpdate, cleanLabels } from '../labels/labels.js';
import { adaptSnapshot } from '../snapshots/adaptor.js';

export interface MemorySnapshot {
  id: number;
  kind: SnapshotKind;
  parent: string;
  labels: Record<string, string>;
  createdAt: Date;
  updatedAt: Date;
}

export class MemorySnapshotter implements RawSnapshotter {
  readonly scope = 'raw' as const;
  readonly snapshots = new Map<string, MemorySnapshot>();
  readonly calls: Array<{ method: string; args: unknown[] }> = [];
  private readonly failures = new Map<string, Error>();
  private next = 1;
  cleanups = 0;

  /** The next call of `method` throws `err`. */
  fail(method: keyof RawSnapshotter, err: Error): void {
    this.failures.set(method, err);
  }

  private enter(method: string, ...args: unknown[]): void {
    this.calls.push({ method, args });
    const err = this.failures.get(method);
    if (err) {
      this.failures.delete(method);
      throw err;
    }
  }

  private get(key: string): MemorySnapshot {
    const entry = this.snapshots.get(key);
    if (!entry) throw new NotFoundError(`snapshot ${key} does not exist`);
    return entry;
  }

  private info(name: string, e: MemorySnapshot): SnapshotInfo {
    return { kind: e.kind, name, parent: e.parent, labels: { ...e.labels }, createdAt: e.createdAt, updatedAt: e.updatedAt };
  }

  async stat(_ctx: OpContext, key: string): Promise<SnapshotInfo> {
    this.enter('stat', key);
    return this.info(key, this.get(key));
  }

  async update(_ctx: OpContext, info: Pick<SnapshotInfo, 'name'> & Partial<Pick<SnapshotInfo, 'labels'>>, fieldpaths?: readonly string[]): Promise<SnapshotInfo> {
    this.enter('update', info, fieldpaths);
    const e = this.get(info.name);
    e.labels = applyLabelUpdate(e.labels, info.labels, fieldpaths, `snapshot ${info.name}`);
    e.updatedAt = new Date();
    return this.info(info.name, e);
  }

  async usage(_ctx: OpContext, key: string): Promise<SnapshotUsage> {
    this.enter('usage', key);
    return { size: this.get(key).id * 1000, inodes: this.get(key).id };
  }

  async mounts(_ctx: OpContext, key: string): Promise<Mount[]> {
    this.enter('mounts', key);
    const e = this.get(key);
    if (e.kind === 'committed') throw new FailedPreconditionError(`snapshot ${key} is committed: it has no mounts`);
    return this.mountsOf(e);
  }

  private mountsOf(e: MemorySnapshot): Mount[] {
    return [{ type: 'bind', source: `/fake/${e.id}/fs`, options: [e.kind === 'view' ? 'ro' : 'rw', 'rbind'] }];
  }

  private create(kind: SnapshotKind, key: string, parent: string, options?: SnapshotOptions): Mount[] {
    if (!key) throw new InvalidArgumentError('snapshot key must not be empty');
    if (this.snapshots.has(key)) throw new AlreadyExistsError(`snapshot ${key}`);
    if (parent && this.get(parent).kind !== 'committed') throw new InvalidArgumentError(`parent ${parent} is not committed snapshot`);
    const now = new Date();
    const e: MemorySnapshot = { id: this.next++, kind, parent, labels: cleanLabels(options?.labels), createdAt: now, updatedAt: now };
    this.snapshots.set(key, e);
    return this.mountsOf(e);
  }

  async prepare(_ctx: OpContext, key: string, parent: string, options?: SnapshotOptions): Promise<Mount[]> {
    this.enter('prepare', key, parent, options);
    return this.create('active', key, parent, options);
  }

  async view(_ctx: OpContext, key: string, parent: string, options?: SnapshotOptions): Promise<Mount[]> {
    this.enter('view', key, parent, options);
    return this.create('view', key, parent, options);
  }

  async commit(_ctx: OpContext, name: string, key: string, options?: SnapshotOptions): Promise<void> {
    this.enter('commit', name, key, options);
    const e = this.get(key);
    if (e.kind !== 'active') throw new FailedPreconditionError(`snapshot ${key} is not active`);
    if (this.snapshots.has(name)) throw new AlreadyExistsError(`snapshot ${name}`);
    this.snapshots.delete(key);
    const now = new Date();
    this.snapshots.set(name, { ...e, kind: 'committed', labels: cleanLabels(options?.labels), createdAt: now, updatedAt: now });
  }

  async remove(_ctx: OpContext, key: string): Promise<void> {
    this.enter('remove', key);
    this.get(key);
    if ([...this.snapshots.values()].some((e) => e.parent === key)) throw new FailedPreconditionError('cannot remove snapshot with child');
    this.snapshots.delete(key);
  }

  async *walk(_ctx: OpContext, filters?: readonly string[]): AsyncIterable<SnapshotInfo> {
    this.enter('walk', filters);
    const filter = parseFilters(filters ?? []);
    for (const [name, e] of [...this.snapshots]) {
      const info = this.info(name, e);
      if (await filter.match(adaptSnapshot(info))) yield info;
    }
  }

  async cleanup(_ctx: OpContext): Promise<void> {
    this.enter('cleanup');
    this.cleanups++;
  }

  /** Calls of one method, by their first argument. */
  keysOf(method: string): unknown[] {
    return this.calls.filter((c) => c.method === method).map((c) => c.args[0]);
  }
}

export function createMemorySnapshotter(): MemorySnapshotter {
  return new MemorySnapshotter();
}
