import {
  AlreadyExistsError,
  FailedPreconditionError,
  InvalidArgumentError,
  NotFoundError,
  parseFilterClauses,
  TimeSlice,
  type Adaptor,
  type AnyValue,
  type Container,
  type ContainerInput,
  type ContainerStore,
  type ExtensionValue,
  type ExtensionWriteOptions,
  type FilterClause,
  type FilterSelector,
  type Labels,
  type Logger,
  type OpContext,
} from '@berth/core';
import type { Database, Records } from './database.js';
import type { ExtensionPolicies } from './extension-policies.js';
import { cleanLabels, labelsField, labelsLostSomething } from './labels.js';
import { requireNamespace } from './leases.js';
import { ensureNamespace } from './namespaces.js';
import { depth, indexPartText, keys, type ContainerRecord, type StoredAny, type StoredTerm } from './schema.js';
import { validateIdentifier, validateLabels } from './validate.js';

/** Containers re-indexed per transaction when a policy's indexed paths change. */
const REINDEX_BATCH = 64;

/** The fields a write without field paths replaces (containerd 1.6's metadata/containers.go). */
const FULL_UPDATE_PATHS = ['labels', 'spec', 'extensions', 'image', 'snapshotkey'] as const;

const EMPTY = new Uint8Array(0);

/** `ext.<name>.<path>` is short for `extensions.<name>.<path>` (the extensions service's queries take both). */
const EXTENSIONS_ALIAS = 'ext';

function storedAny(any: AnyValue): StoredAny {
  return { typeUrl: any.typeUrl ?? '', value: any.value ?? EMPTY };
}

/** A stored Any as core's AnyValue, on the same bytes: each read decodes a fresh record, so nothing else holds them. */
function anyValue(stored: StoredAny): AnyValue {
  const value = stored.value ?? EMPTY;
  return { typeUrl: stored.typeUrl, value: Buffer.isBuffer(value) ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength) };
}

function sameAny(a: StoredAny | undefined, b: StoredAny | undefined): boolean {
  if (!a || !b) return a === b;
  return a.typeUrl === b.typeUrl && Buffer.compare(Buffer.from(a.value), Buffer.from(b.value)) === 0;
}

/** Own entries of a stored map (msgpack gives plain objects). */
function entriesOf<T>(map: Readonly<Record<string, T>> | undefined): Array<[string, T]> {
  return map ? Object.entries(map) : [];
}

export function toContainer(id: string, record: ContainerRecord): Container {
  const extensions = new Map<string, AnyValue>();
  const revisions = new Map<string, number>();
  for (const [name, value] of entriesOf(record.extensions)) {
    extensions.set(name, anyValue(value));
    revisions.set(name, record.revisions?.[name] ?? 1);
  }
  return {
    id,
    labels: { ...record.labels },
    image: record.image ?? '',
    runtime: {
      name: record.runtime?.name ?? '',
      ...(record.runtime?.options ? { options: anyValue(record.runtime.options) } : {}),
    },
    ...(record.spec ? { spec: anyValue(record.spec) } : {}),
    snapshotter: record.snapshotter ?? '',
    snapshotKey: record.snapshotKey ?? '',
    extensions: Object.fromEntries(extensions),
    extensionRevisions: Object.fromEntries(revisions),
    createdAt: new Date(record.createdAt),
    updatedAt: new Date(record.updatedAt),
  };
}

/** A container's fields before they are stored (what validation and field paths work on). */
interface Draft {
  id: string;
  labels: Map<string, string>;
  image: string;
  runtime: { name: string; options?: StoredAny };
  spec?: StoredAny;
  snapshotter: string;
  snapshotKey: string;
  extensions: Map<string, StoredAny>;
}

function draftOf(input: ContainerInput): Draft {
  return {
    id: input.id,
    labels: new Map(Object.entries(input.labels ?? {})),
    image: input.image ?? '',
    runtime: { name: input.runtime?.name ?? '', ...(input.runtime?.options ? { options: storedAny(input.runtime.options) } : {}) },
    ...(input.spec ? { spec: storedAny(input.spec) } : {}),
    snapshotter: input.snapshotter ?? '',
    snapshotKey: input.snapshotKey ?? '',
    extensions: new Map(Object.entries(input.extensions ?? {}).map(([k, v]) => [k, storedAny(v)])),
  };
}

function draftOfRecord(id: string, record: ContainerRecord): Draft {
  return {
    id,
    labels: new Map(entriesOf(record.labels)),
    image: record.image ?? '',
    runtime: { name: record.runtime?.name ?? '', ...(record.runtime?.options ? { options: record.runtime.options } : {}) },
    ...(record.spec ? { spec: record.spec } : {}),
    snapshotter: record.snapshotter ?? '',
    snapshotKey: record.snapshotKey ?? '',
    extensions: new Map(entriesOf(record.extensions)),
  };
}

/** containerd's validateContainer, in its order and words. */
function validateDraft(draft: Draft): void {
  try {
    validateIdentifier(draft.id);
  } catch (err) {
    throw new InvalidArgumentError(`container.ID: ${(err as Error).message}`, { cause: err });
  }
  for (const name of draft.extensions.keys()) {
    if (name === '') throw new InvalidArgumentError('container.Extension keys must not be zero-length');
  }
  try {
    validateLabels(Object.fromEntries(draft.labels));
  } catch (err) {
    throw new InvalidArgumentError(`containers.Labels: ${(err as Error).message}`, { cause: err });
  }
  if (!draft.runtime.name) throw new InvalidArgumentError('container.Runtime.Name must be set');
  if (!draft.spec) throw new InvalidArgumentError('container.Spec must be set');
  if (draft.snapshotKey && !draft.snapshotter) {
    throw new InvalidArgumentError('container.Snapshotter must be set if container.SnapshotKey is set');
  }
}

/**
 * containerd's field-path update of a container: `labels.<k>` (an empty or absent value removes the label),
 * `extensions.<name>` (berth: absent in the input removes the extension, where containerd 1.6 stores an empty Any),
 * `labels`, `spec`, `extensions` (replaced whole), `image`, `snapshotkey`; anything else is InvalidArgument. No paths
 * replace those five, and a changed snapshotter or runtime name is InvalidArgument ("immutable").
 */
export function applyContainerUpdate(current: Draft, input: ContainerInput, fieldpaths: readonly string[]): Draft {
  const incoming = draftOf(input);
  const next: Draft = { ...current, labels: new Map(current.labels), extensions: new Map(current.extensions) };
  let paths = fieldpaths;
  if (paths.length === 0) {
    paths = FULL_UPDATE_PATHS;
    if (current.snapshotter !== incoming.snapshotter) throw new InvalidArgumentError('container.Snapshotter field is immutable');
    if (current.runtime.name !== incoming.runtime.name) throw new InvalidArgumentError('container.Runtime.Name field is immutable');
  }
  for (const path of paths) {
    if (path.startsWith('labels.')) {
      const k = path.slice('labels.'.length);
      next.labels.set(k, incoming.labels.get(k) ?? '');
      continue;
    }
    if (path.startsWith('extensions.')) {
      const k = path.slice('extensions.'.length);
      const value = incoming.extensions.get(k);
      if (value) next.extensions.set(k, value);
      else next.extensions.delete(k);
      continue;
    }
    switch (path) {
      case 'labels':
        next.labels = new Map(incoming.labels);
        break;
      case 'spec':
        if (incoming.spec) next.spec = incoming.spec;
        else delete next.spec;
        break;
      case 'extensions':
        next.extensions = new Map(incoming.extensions);
        break;
      case 'image':
        next.image = incoming.image;
        break;
      case 'snapshotkey':
        next.snapshotKey = incoming.snapshotKey;
        break;
      default:
        throw new InvalidArgumentError(`cannot update ${JSON.stringify(path)} field on ${JSON.stringify(current.id)}`);
    }
  }
  return next;
}

/** containerd's adaptContainer, plus `snapshotter` and `snapshotkey`: empty fields are absent. */
export function adaptContainer(record: ContainerRecord, id: string): Adaptor {
  return (fieldpath) => {
    const [head, ...rest] = fieldpath;
    const nonEmpty = (s: string | undefined): string | undefined => (s ? s : undefined);
    switch (head) {
      case 'id':
        return rest.length === 0 ? nonEmpty(id) : undefined;
      case 'image':
        return rest.length === 0 ? nonEmpty(record.image) : undefined;
      case 'runtime':
        return rest.length === 1 && rest[0] === 'name' ? nonEmpty(record.runtime?.name) : undefined;
      case 'labels':
        return labelsField(record.labels ?? {}, rest);
      case 'snapshotter':
        return rest.length === 0 ? nonEmpty(record.snapshotter) : undefined;
      case 'snapshotkey':
        return rest.length === 0 ? nonEmpty(record.snapshotKey) : undefined;
      default:
        return undefined;
    }
  };
}

function containerNotFound(id: string, ns: string): NotFoundError {
  return new NotFoundError(`container ${JSON.stringify(id)} in namespace ${JSON.stringify(ns)}: not found`);
}

function extensionNotFound(id: string, name: string): NotFoundError {
  return new NotFoundError(`extension ${JSON.stringify(name)} of container ${JSON.stringify(id)}: not found`);
}

function checkRevision(id: string, name: string, current: number, options: ExtensionWriteOptions | undefined): void {
  const expected = options?.expectedRevision;
  if (expected === undefined || expected === current) return;
  throw new FailedPreconditionError(
    `extension ${JSON.stringify(name)} of container ${JSON.stringify(id)} is at revision ${current}, not ${expected}`,
  );
}

/** An extension condition of a filter: `extensions.<name>` (presence) or `extensions.<name>.<path> <op> <value>`. */
interface ExtensionCondition {
  readonly selector: FilterSelector;
  readonly name: string;
  /** undefined for the presence of the extension itself. */
  readonly path?: string;
}

interface PlannedClause {
  readonly clause: FilterClause;
  readonly extensions: ReadonlyMap<FilterSelector, ExtensionCondition>;
}

/** @internal What list() read, for tests that show a query does not grow with containers that do not match. */
export interface ContainerQueryStats {
  /** Container records read. */
  recordsRead: number;
  /** Index keys read (holders and terms). */
  indexKeysRead: number;
}

/**
 * The containers bucket (`['v1', ns, 'containers', id] -> ContainerRecord`) as containerd 1.6's
 * metadata/containers.go, with berth's extension revisions, compare-and-set writes of one extension, and the
 * extension index (schema.ts) that `extensions.` filter conditions are answered from. Every write is one LMDB
 * transaction: the record, its revisions and its index terms commit together or not at all.
 */
export class LmdbContainerStore implements ContainerStore {
  /** @internal */
  readonly stats: ContainerQueryStats = { recordsRead: 0, indexKeysRead: 0 };
  private reindexing: Promise<void> = Promise.resolve();
  private closed = false;
  private readonly unsubscribe: () => void;

  constructor(
    private readonly db: Database,
    private readonly policies: ExtensionPolicies,
    private readonly log: Logger,
  ) {
    this.unsubscribe = policies.onIndexChange((name) => this.scheduleReindex(name), log);
  }

  async get(ctx: OpContext, id: string): Promise<Container> {
    const ns = requireNamespace(ctx);
    this.db.assertOpen();
    const record = id ? this.read(this.db.records, ns, id) : undefined;
    if (!record) throw containerNotFound(id, ns);
    return toContainer(id, record);
  }

  async create(ctx: OpContext, input: ContainerInput): Promise<Container> {
    const ns = requireNamespace(ctx);
    const draft = draftOf(input);
    try {
      validateDraft(draft);
    } catch (err) {
      throw new InvalidArgumentError(`create container failed validation: ${(err as Error).message}`, { cause: err });
    }
    const record = await this.db.update((r) => {
      const key = keys.container(ns, draft.id);
      if (r.has(key)) throw new AlreadyExistsError(`container ${JSON.stringify(draft.id)}: already exists`);
      ensureNamespace(r, ns);
      const now = Date.now();
      return this.write(r, ns, draft, undefined, now, now);
    });
    return toContainer(draft.id, record);
  }

  async update(ctx: OpContext, input: ContainerInput, fieldpaths: readonly string[] = []): Promise<Container> {
    const ns = requireNamespace(ctx);
    if (!input.id) throw new InvalidArgumentError('must specify a container id');
    const { record } = await this.db.update(
      (r) => {
        const current = this.read(r, ns, input.id);
        if (!current) throw new NotFoundError(`container ${JSON.stringify(input.id)}: not found`);
        const next = applyContainerUpdate(draftOfRecord(input.id, current), input, fieldpaths);
        try {
          validateDraft(next);
        } catch (err) {
          throw new InvalidArgumentError(`update failed validation: ${(err as Error).message}`, { cause: err });
        }
        const written = this.write(r, ns, next, current, current.createdAt, Date.now());
        const lost =
          current.snapshotKey !== written.snapshotKey || labelsLostSomething(current.labels ?? {}, written.labels);
        return { record: written, lost };
      },
      (res) => (res.lost ? 'delete' : 'write'),
    );
    return toContainer(input.id, record);
  }

  async delete(ctx: OpContext, id: string): Promise<void> {
    const ns = requireNamespace(ctx);
    await this.db.update((r) => {
      const current = id ? r.get<ContainerRecord>(keys.container(ns, id)) : undefined;
      if (!current) throw new NotFoundError(`container ${JSON.stringify(id)}: not found`);
      this.unindex(r, ns, id, current, new Set(Object.keys(current.extensions ?? {})));
      r.removeTree(keys.container(ns, id));
    }, 'delete');
  }

  async getExtension(ctx: OpContext, id: string, name: string): Promise<ExtensionValue> {
    const ns = requireNamespace(ctx);
    this.db.assertOpen();
    const record = id ? this.read(this.db.records, ns, id) : undefined;
    if (!record) throw containerNotFound(id, ns);
    const value = name ? record.extensions?.[name] : undefined;
    if (!value || !Object.hasOwn(record.extensions!, name)) throw extensionNotFound(id, name);
    return { value: anyValue(value), revision: record.revisions?.[name] ?? 1 };
  }

  async putExtension(ctx: OpContext, id: string, name: string, value: AnyValue, options?: ExtensionWriteOptions): Promise<ExtensionValue> {
    const result = await this.modifyExtension(ctx, id, name, () => value, options);
    return result!;
  }

  async modifyExtension(
    ctx: OpContext,
    id: string,
    name: string,
    change: (current: ExtensionValue | undefined) => AnyValue | undefined,
    options?: ExtensionWriteOptions,
  ): Promise<ExtensionValue | undefined> {
    const ns = requireNamespace(ctx);
    if (!name) throw new InvalidArgumentError('container.Extension keys must not be zero-length');
    return this.db.update(
      (r) => {
        const current = id ? this.read(r, ns, id) : undefined;
        if (!current) throw containerNotFound(id, ns);
        const stored = Object.hasOwn(current.extensions ?? {}, name) ? current.extensions![name] : undefined;
        const revision = stored ? (current.revisions?.[name] ?? 1) : 0;
        checkRevision(id, name, revision, options);
        const before = stored ? { value: anyValue(stored), revision } : undefined;
        const after = change(before);
        const draft = draftOfRecord(id, current);
        if (after) draft.extensions.set(name, storedAny(after));
        else draft.extensions.delete(name);
        if (!after && !stored) return undefined;
        const written = this.write(r, ns, draft, current, current.createdAt, Date.now());
        if (!after) return undefined;
        return { value: anyValue(written.extensions![name]!), revision: written.revisions?.[name] ?? 1 };
      },
    );
  }

  async deleteExtension(ctx: OpContext, id: string, name: string, options?: ExtensionWriteOptions): Promise<void> {
    const ns = requireNamespace(ctx);
    if (!name) throw new InvalidArgumentError('container.Extension keys must not be zero-length');
    await this.db.update((r) => {
      const current = id ? this.read(r, ns, id) : undefined;
      if (!current) throw containerNotFound(id, ns);
      const present = Object.hasOwn(current.extensions ?? {}, name);
      checkRevision(id, name, present ? (current.revisions?.[name] ?? 1) : 0, options);
      if (!present) throw extensionNotFound(id, name);
      const draft = draftOfRecord(id, current);
      draft.extensions.delete(name);
      this.write(r, ns, draft, current, current.createdAt, Date.now());
    });
  }

  async *scanExtension(name: string): AsyncIterable<{ readonly namespace: string; readonly id: string; readonly value: AnyValue }> {
    this.db.assertOpen();
    const slice = new TimeSlice();
    for (const ns of this.db.records.childNames(keys.root)) {
      for (const key of this.db.records.scanKeys(keys.extensionHolders(ns, name), depth.extensionHolder)) {
        this.stats.indexKeysRead++;
        const id = key[4]!;
        const record = this.read(this.db.records, ns, id);
        const value = record?.extensions && Object.hasOwn(record.extensions, name) ? record.extensions[name] : undefined;
        if (value) yield { namespace: ns, id, value: anyValue(value) };
        await slice.pause();
      }
    }
  }

  /**
   * The containers matching any filter (`ext.` may stand for `extensions.`). Each filter is planned on its own: an `extensions.<name>.<path>==v`
   * condition reads its candidates from the index, so does `id==x` (the record itself), `extensions.<name>`
   * (the holders) and a presence or `~=` test on an indexed path (that path's terms); a filter with none of these
   * walks every container. Candidates are then checked against the whole filter on their records.
   */
  async list(ctx: OpContext, filters: readonly string[] = []): Promise<Container[]> {
    const ns = requireNamespace(ctx);
    const planned = parseFilterClauses(filters).map((clause) => this.plan(clause));
    this.db.assertOpen();
    const slice = new TimeSlice();
    const out: Container[] = [];
    const candidates = new Set<string>();
    let scanAll = false;
    for (const p of planned) {
      const found = await this.candidates(ns, p, slice);
      if (found === 'all') {
        scanAll = true;
        break;
      }
      for (const id of found) candidates.add(id);
    }
    if (scanAll) {
      for (const { key, value } of this.db.records.scan<ContainerRecord>(keys.containers(ns), depth.container)) {
        this.stats.recordsRead++;
        if (await this.matchesAny(planned, key[3]!, value)) out.push(toContainer(key[3]!, value));
        await slice.pause();
      }
      return out;
    }
    for (const id of [...candidates].sort()) {
      const record = this.read(this.db.records, ns, id);
      if (record && (await this.matchesAny(planned, id, record))) out.push(toContainer(id, record));
      await slice.pause();
    }
    return out;
  }

  /** Stops re-indexing and waits for a batch in progress. */
  async close(): Promise<void> {
    this.closed = true;
    this.unsubscribe();
    await this.reindexing;
  }

  /** @internal Resolves once every re-index requested so far is done. */
  whenIndexed(): Promise<void> {
    return this.reindexing;
  }

  private read(r: Records, ns: string, id: string): ContainerRecord | undefined {
    this.stats.recordsRead++;
    return r.get<ContainerRecord>(keys.container(ns, id));
  }

  /**
   * Writes the record of `draft` over `current` (undefined on create) in the open transaction: revisions for the
   * extensions that are new or changed (each validated by the policies first), the holder keys and the index terms.
   */
  private write(r: Records, ns: string, draft: Draft, current: ContainerRecord | undefined, createdAt: number, updatedAt: number): ContainerRecord {
    const revisions = new Map(entriesOf(current?.revisions));
    const terms = new Map(entriesOf(current?.terms));
    const before = new Map(entriesOf(current?.extensions));
    const changed = new Set<string>();
    for (const [name, value] of draft.extensions) {
      if (sameAny(before.get(name), value)) continue;
      this.policies.validate(ns, draft.id, name, anyValue(value));
      revisions.set(name, (revisions.get(name) ?? 0) + 1);
      changed.add(name);
    }
    const removed = new Set([...before.keys()].filter((name) => !draft.extensions.has(name)));
    if (current) this.unindex(r, ns, draft.id, current, new Set([...changed, ...removed]));
    for (const name of removed) terms.delete(name);
    for (const name of changed) {
      r.put(keys.extensionHolder(ns, name, draft.id), true);
      const valueTerms = this.policies.terms(name, anyValue(draft.extensions.get(name)!));
      for (const [path, value] of valueTerms) r.put(keys.extensionTerm(ns, name, path, value, draft.id), true);
      if (valueTerms.length > 0) terms.set(name, valueTerms);
      else terms.delete(name);
    }
    const labels = cleanLabels(Object.fromEntries(draft.labels)) as Labels;
    const record: ContainerRecord = {
      labels,
      createdAt,
      updatedAt,
      ...(draft.snapshotter ? { snapshotter: draft.snapshotter } : {}),
      ...(draft.snapshotKey ? { snapshotKey: draft.snapshotKey } : {}),
      ...(draft.image ? { image: draft.image } : {}),
      runtime: draft.runtime,
      ...(draft.spec ? { spec: draft.spec } : {}),
      ...(draft.extensions.size > 0 ? { extensions: Object.fromEntries(draft.extensions) } : {}),
      ...(revisions.size > 0 ? { revisions: Object.fromEntries(revisions) } : {}),
      ...(terms.size > 0 ? { terms: Object.fromEntries(terms) } : {}),
    };
    r.put(keys.container(ns, draft.id), record);
    return record;
  }

  /** Removes the holder keys and index terms of the named extensions of a stored container. */
  private unindex(r: Records, ns: string, id: string, current: ContainerRecord, names: ReadonlySet<string>): void {
    for (const name of names) {
      r.remove(keys.extensionHolder(ns, name, id));
      const old = current.terms && Object.hasOwn(current.terms, name) ? current.terms[name]! : [];
      for (const [path, value] of old) r.remove(keys.extensionTerm(ns, name, path, value, id));
    }
  }

  /** Checks the extension conditions of a filter against the policies' indexed paths (InvalidArgument otherwise). */
  private plan(clause: FilterClause): PlannedClause {
    const extensions = new Map<FilterSelector, ExtensionCondition>();
    for (const selector of clause.selectors) {
      const [head, name, ...rest] = selector.fieldpath;
      if (head !== 'extensions' && head !== EXTENSIONS_ALIAS) continue;
      if (name === undefined || name === '') {
        throw new InvalidArgumentError('filters: an extensions condition names an extension: extensions.<name>.<path>');
      }
      if (rest.length === 0) {
        if (selector.operator !== 'present') {
          throw new InvalidArgumentError(
            `filters: compare a field of extension ${JSON.stringify(name)} (extensions.<name>.<path>), not the extension itself`,
          );
        }
        extensions.set(selector, { selector, name });
        continue;
      }
      const path = rest.join('.');
      if (!this.policies.isIndexed(name, path)) {
        const indexed = this.policies.indexedPaths(name);
        throw new InvalidArgumentError(
          `filters: path ${JSON.stringify(path)} of extension ${JSON.stringify(name)} is not indexed` +
            (indexed.length > 0 ? ` (indexed: ${indexed.join(', ')})` : ''),
        );
      }
      extensions.set(selector, { selector, name, path });
    }
    return { clause, extensions };
  }

  /** The ids one planned filter can match, from the index; 'all' when it has no condition the index answers. */
  private async candidates(ns: string, planned: PlannedClause, slice: TimeSlice): Promise<Iterable<string> | 'all'> {
    const conditions = [...planned.extensions.values()];
    const byTerm = conditions.find((c) => c.path !== undefined && c.selector.operator === '==');
    if (byTerm) return this.indexIds(keys.extensionTerms(ns, byTerm.name, byTerm.path!, byTerm.selector.value), depth.extensionTerm, 6, slice);
    const byId = planned.clause.selectors.find((s) => s.fieldpath.length === 1 && s.fieldpath[0] === 'id' && s.operator === '==');
    if (byId) return [byId.value];
    const byHolder = conditions.find((c) => c.path === undefined);
    if (byHolder) return this.indexIds(keys.extensionHolders(ns, byHolder.name), depth.extensionHolder, 4, slice);
    const byPath = conditions.find((c) => c.path !== undefined && (c.selector.operator === 'present' || c.selector.operator === '~='));
    if (byPath) {
      const ids: string[] = [];
      for (const key of this.db.records.scanKeys(keys.extensionTerms(ns, byPath.name, byPath.path!), depth.extensionTerm)) {
        this.stats.indexKeysRead++;
        const text = indexPartText(key[5]!);
        // A hashed value cannot be tested here: the record decides.
        if (text === undefined || byPath.selector.operator === 'present' || (await byPath.selector.match(() => text))) ids.push(key[6]!);
        await slice.pause();
      }
      return ids;
    }
    return 'all';
  }

  private async indexIds(prefix: readonly (string | number)[], keyDepth: number, idAt: number, slice: TimeSlice): Promise<string[]> {
    const ids: string[] = [];
    for (const key of this.db.records.scanKeys(prefix, keyDepth)) {
      this.stats.indexKeysRead++;
      ids.push(key[idAt]!);
      await slice.pause();
    }
    return ids;
  }

  private async matchesAny(planned: readonly PlannedClause[], id: string, record: ContainerRecord): Promise<boolean> {
    const adaptor = adaptContainer(record, id);
    for (const p of planned) {
      let ok = true;
      for (const selector of p.clause.selectors) {
        const condition = p.extensions.get(selector);
        const verdict = condition ? await matchExtension(condition, record) : await selector.match(adaptor);
        if (!verdict) {
          ok = false;
          break;
        }
      }
      if (ok) return true;
    }
    return false;
  }

  private scheduleReindex(name: string): void {
    this.reindexing = this.reindexing
      .then(() => this.reindex(name))
      .catch((err: unknown) => this.log.warn('extension re-index failed', { name, error: err }));
  }

  /**
   * Rewrites the index terms of every stored value of `name` (its indexed paths changed), REINDEX_BATCH
   * containers per transaction, yielding between transactions. Queries meanwhile see each container either with
   * its old terms or its new ones.
   */
  private async reindex(name: string): Promise<void> {
    const slice = new TimeSlice();
    const flush = async (ns: string, batch: string[]) => {
      if (batch.length === 0 || this.closed || this.db.isClosed) return;
      await this.db.update((r) => {
        for (const id of batch) this.reindexOne(r, ns, id, name);
      });
    };
    if (this.closed || this.db.isClosed) return;
    for (const ns of this.db.records.childNames(keys.root)) {
      let batch: string[] = [];
      for (const key of this.db.records.scanKeys(keys.extensionHolders(ns, name), depth.extensionHolder)) {
        if (this.closed || this.db.isClosed) return;
        batch.push(key[4]!);
        if (batch.length >= REINDEX_BATCH) {
          await flush(ns, batch);
          batch = [];
        }
        await slice.pause();
      }
      await flush(ns, batch);
    }
  }

  private reindexOne(r: Records, ns: string, id: string, name: string): void {
    const current = r.get<ContainerRecord>(keys.container(ns, id));
    const value = current?.extensions && Object.hasOwn(current.extensions, name) ? current.extensions[name] : undefined;
    if (!current || !value) return;
    const fresh = this.policies.terms(name, anyValue(value));
    const old = current.terms && Object.hasOwn(current.terms, name) ? current.terms[name]! : [];
    if (sameTerms(old, fresh)) return;
    for (const [path, v] of old) r.remove(keys.extensionTerm(ns, name, path, v, id));
    for (const [path, v] of fresh) r.put(keys.extensionTerm(ns, name, path, v, id), true);
    const terms = new Map(entriesOf(current.terms));
    if (fresh.length > 0) terms.set(name, fresh);
    else terms.delete(name);
    const { terms: _old, ...rest } = current;
    r.put(keys.container(ns, id), { ...rest, ...(terms.size > 0 ? { terms: Object.fromEntries(terms) } : {}) } satisfies ContainerRecord);
  }
}

function sameTerms(a: readonly StoredTerm[], b: readonly StoredTerm[]): boolean {
  return a.length === b.length && a.every(([p, v], i) => b[i]![0] === p && b[i]![1] === v);
}

/** An extension condition on a record: its stored terms at the path (presence, `==` any, `!=` none, `~=` any). */
async function matchExtension(condition: ExtensionCondition, record: ContainerRecord): Promise<boolean> {
  const { selector, name, path } = condition;
  const has = record.extensions !== undefined && Object.hasOwn(record.extensions, name);
  if (path === undefined) return has;
  const terms = has && record.terms && Object.hasOwn(record.terms, name) ? record.terms[name]! : [];
  const values = terms.filter(([p]) => p === path).map(([, v]) => v);
  switch (selector.operator) {
    case 'present':
      return values.length > 0;
    case '==':
      return values.includes(selector.value);
    case '!=':
      // An absent field compares as '' (containerd's filters).
      return values.length === 0 ? selector.value !== '' : !values.includes(selector.value);
    case '~=':
      for (const v of values) if (await selector.match(() => v)) return true;
      return false;
  }
}
