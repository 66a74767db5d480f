/**
 * A raw snapshotter that keeps its snapshots in memory (tests of the namespaced layer only): kinds, parents,
 * labels and the rules of containerd's storage (committed parents, no remove with children), with fake bind mounts.
 * `calls` records every call by method, `fail` makes the next call of a method throw.
 */
import {
  AlreadyExistsError,
  FailedPreconditionError,
  InvalidArgumentError,
  NotFoundError,
  adaptObject,
  applyLabelUpdate,
  cleanLabels,
  parseFilters,
  type Mount,
  type OpContext,
  type RawSnapshotter,
  type SnapshotInfo,
  type SnapshotKind,
  type SnapshotOptions,
  type SnapshotUsage,
} from '@berth/core';

interface Entry {
  id: number;
  kind: SnapshotKind;
  parent: string;
  labels: Record<string, string>;
  createdAt: Date;
  updatedAt: Date;
}

export class MemorySnapshotter implements RawSnapshotter {
  readonly scope = 'raw' as const;
  readonly snapshots = new Map<string, Entry>();
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

  private get(key: string): Entry {
    const entry = this.snapshots.get(key);
    if (!entry) throw new NotFoundError(`snapshot ${key} does not exist`);
    return entry;
  }

  private info(name: string, e: Entry): SnapshotInfo {
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
    return this.mountsOf(this.get(key));
  }

  private mountsOf(e: Entry): Mount[] {
    return [{ type: 'bind', source: `/fake/${e.id}/fs`, options: [e.kind === 'view' ? 'ro' : 'rw', 'rbind'] }];
  }

  private create(kind: SnapshotKind, key: string, parent: string, options?: SnapshotOptions): Mount[] {
    if (this.snapshots.has(key)) throw new AlreadyExistsError(`snapshot ${key}`);
    if (parent && this.get(parent).kind !== 'committed') throw new InvalidArgumentError(`parent ${parent} is not committed snapshot`);
    const now = new Date();
    const e: Entry = { id: this.next++, kind, parent, labels: cleanLabels(options?.labels), createdAt: now, updatedAt: now };
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
      if (await filter.match(adaptObject({ ...info }))) yield info;
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
