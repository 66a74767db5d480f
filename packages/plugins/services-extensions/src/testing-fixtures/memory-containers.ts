// A small in-memory ContainerStore for this package's unit tests: extension revisions, expected revisions and the
// contributed policy's validation and terms, as the contract states them. Filters: `id` and
// `extensions.<name>.<path>==value` only (scanning, which is fine for a test double).
import {
  FailedPreconditionError,
  InvalidArgumentError,
  NotFoundError,
  parseSelectors,
  type AnyValue,
  type Container,
  type ContainerExtensionPolicy,
  type ContainerInput,
  type ContainerStore,
  type ExtensionValue,
  type ExtensionWriteOptions,
  type OpContext,
} from '@berth/core';

interface Record_ {
  container: Container;
}

export class MemoryContainerStore implements ContainerStore {
  private readonly records = new Map<string, Record_>();
  /** Called inside every write "transaction" (between the read and the write), to let tests interleave. */
  onWrite?: () => void;

  constructor(private readonly policy?: ContainerExtensionPolicy) {}

  private key(ns: string, id: string): string {
    return `${ns}\u0000${id}`;
  }

  private require(ctx: OpContext, id: string): Record_ {
    const found = this.records.get(this.key(ctx.namespace, id));
    if (!found) throw new NotFoundError(`container "${id}": not found`);
    return found;
  }

  async get(ctx: OpContext, id: string): Promise<Container> {
    return this.require(ctx, id).container;
  }

  async list(ctx: OpContext, filters: readonly string[] = []): Promise<Container[]> {
    const all = [...this.records.entries()].filter(([k]) => k.startsWith(`${ctx.namespace}\u0000`)).map(([, r]) => r.container);
    if (filters.length === 0) return all;
    const parsed = filters.map((f) => parseSelectors(f));
    return all.filter((c) => parsed.some((selectors) => selectors.every((s) => this.matches(c, s.fieldpath, s.operator, s.value))));
  }

  private matches(c: Container, fieldpath: readonly string[], operator: string, value: string): boolean {
    if (fieldpath[0] === 'id') return operator === '==' ? c.id === value : c.id !== value;
    if (fieldpath[0] === 'extensions' && fieldpath.length >= 3) {
      const name = fieldpath[1]!;
      const path = fieldpath.slice(2).join('.');
      if (!this.policy?.indexedPaths(name).includes(path)) throw new InvalidArgumentError(`extensions.${name}.${path} is not an indexed path`);
      const ext = c.extensions[name];
      const terms = ext ? this.policy.terms(name, ext).filter((t) => t.path === path).map((t) => t.value) : [];
      return operator === '==' ? terms.includes(value) : !terms.includes(value);
    }
    throw new InvalidArgumentError(`filter on ${fieldpath.join('.')} is not supported by the test store`);
  }

  async create(ctx: OpContext, input: ContainerInput): Promise<Container> {
    const key = this.key(ctx.namespace, input.id);
    if (this.records.has(key)) throw new InvalidArgumentError(`container "${input.id}": already exists`);
    const extensions = { ...input.extensions };
    for (const [name, value] of Object.entries(extensions)) this.policy?.validate(ctx.namespace, input.id, name, value);
    const now = new Date();
    const container: Container = {
      id: input.id,
      labels: { ...input.labels },
      image: input.image ?? '',
      runtime: input.runtime ?? { name: 'io.containerd.runc.v2' },
      ...(input.spec ? { spec: input.spec } : {}),
      snapshotter: input.snapshotter ?? '',
      snapshotKey: input.snapshotKey ?? '',
      extensions,
      extensionRevisions: Object.fromEntries(Object.keys(extensions).map((k) => [k, 1])),
      createdAt: now,
      updatedAt: now,
    };
    this.records.set(key, { container });
    return container;
  }

  async update(): Promise<Container> {
    throw new Error('not used by these tests');
  }

  async delete(ctx: OpContext, id: string): Promise<void> {
    this.require(ctx, id);
    this.records.delete(this.key(ctx.namespace, id));
  }

  async getExtension(ctx: OpContext, id: string, name: string): Promise<ExtensionValue> {
    const c = this.require(ctx, id).container;
    const value = c.extensions[name];
    if (!value) throw new NotFoundError(`extension "${name}" of container "${id}": not found`);
    return { value, revision: c.extensionRevisions[name]! };
  }

  async putExtension(ctx: OpContext, id: string, name: string, value: AnyValue, options?: ExtensionWriteOptions): Promise<ExtensionValue> {
    return (await this.modifyExtension(ctx, id, name, () => value, options))!;
  }

  async modifyExtension(
    ctx: OpContext,
    id: string,
    name: string,
    change: (current: ExtensionValue | undefined) => AnyValue | undefined,
    options: ExtensionWriteOptions = {},
  ): Promise<ExtensionValue | undefined> {
    // Synchronous from here on: one "transaction".
    const record = this.require(ctx, id);
    const c = record.container;
    const present = c.extensions[name];
    const revision = c.extensionRevisions[name] ?? 0;
    const current = present ? { value: present, revision } : undefined;
    const actual = current?.revision ?? 0;
    if (options.expectedRevision !== undefined && options.expectedRevision !== actual) {
      throw new FailedPreconditionError(`extension "${name}" of container "${id}": revision ${options.expectedRevision} is stale, the current revision is ${actual}`);
    }
    const next = change(current);
    this.onWrite?.();
    const extensions = { ...c.extensions };
    const revisions = { ...c.extensionRevisions };
    if (next === undefined) {
      if (!present) throw new NotFoundError(`extension "${name}" of container "${id}": not found`);
      delete extensions[name];
      revisions[name] = revision; // kept: the count continues after a delete
    } else {
      this.policy?.validate(ctx.namespace, id, name, next);
      extensions[name] = next;
      revisions[name] = revision + 1;
    }
    record.container = { ...c, extensions, extensionRevisions: revisions, updatedAt: new Date() };
    return next === undefined ? undefined : { value: next, revision: revision + 1 };
  }

  async deleteExtension(ctx: OpContext, id: string, name: string, options?: ExtensionWriteOptions): Promise<void> {
    await this.modifyExtension(ctx, id, name, () => undefined, options);
  }

  async *scanExtension(name: string): AsyncIterable<{ readonly namespace: string; readonly id: string; readonly value: AnyValue }> {
    for (const [key, { container }] of this.records) {
      const value = container.extensions[name];
      if (value) yield { namespace: key.split('\u0000')[0]!, id: container.id, value };
    }
  }
}
