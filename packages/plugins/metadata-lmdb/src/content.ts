import { publishEvent } from '@berth/api';
import {
  AlreadyExistsError,
  FailedPreconditionError,
  InvalidArgumentError,
  NotFoundError,
  NotImplementedError,
  isAlreadyExists,
  isNotFound,
  parseFilters,
  TimeSlice,
  type Adaptor,
  type CommitOptions,
  type ContentInfo,
  type ContentReader,
  type ContentStore,
  type ContentWriter,
  type EventPublisher,
  type IngestStatus,
  type Labels,
  type OpContext,
  type RawContentStore,
  type WriterOptions,
} from '@berth/core';
import type { Database, Mutation } from './database.js';
import { adaptLabelled, applyLabelUpdate, cleanLabels, labelsLostSomething } from './labels.js';
import { addToContextLease, checkContextLease, removeFromContextLease, requireNamespace } from './leases.js';
import { ensureNamespace } from './namespaces.js';
import { depth, keys, type BlobRecord, type IngestRecord } from './schema.js';
import { validateDigest, validateKeyPart, validateLabels } from './validate.js';

export interface ContentPolicy {
  /** containerd's `shared` policy: a write whose expected blob is in the backend is satisfied by linking. */
  readonly shared: boolean;
  /** How long an ingest created without a lease survives garbage collection. */
  readonly ingestExpiryMs: number;
}

function toInfo(digest: string, record: BlobRecord): ContentInfo {
  return {
    digest,
    size: record.size,
    createdAt: new Date(record.createdAt),
    updatedAt: new Date(record.updatedAt),
    labels: { ...record.labels },
  };
}

function adaptInfo(info: ContentInfo): Adaptor {
  // containerd's content.AdaptInfo (digest, labels.*), plus size.
  return adaptLabelled({ digest: info.digest, size: String(info.size) }, info.labels);
}

function blobNotFound(digest: string): NotFoundError {
  return new NotFoundError(`content digest ${digest}: not found`);
}

function refNotFound(ref: string): NotFoundError {
  return new NotFoundError(`reference ${ref}: not found`);
}

/** The raw store ignores namespaces; the lease never goes there (leases are the metadata's business). */
function rawContext(ctx: OpContext): OpContext {
  return { namespace: ctx.namespace, ...(ctx.signal ? { signal: ctx.signal } : {}) };
}

/**
 * The namespaced content store over the raw one (containerd's metadata contentStore): blob and ingest records per
 * namespace, backend refs `<namespace>/<counter>/<ref>`, lease membership, and the `shared` policy.
 */
export class LmdbContentStore implements ContentStore {
  readonly scope = 'namespaced' as const;

  constructor(
    private readonly db: Database,
    private readonly raw: RawContentStore,
    private readonly events: EventPublisher | undefined,
    private readonly policy: ContentPolicy,
  ) {}

  async info(ctx: OpContext, digest: string): Promise<ContentInfo> {
    const ns = requireNamespace(ctx);
    validateDigest(digest);
    this.db.assertOpen();
    const record = this.db.records.get<BlobRecord>(keys.blob(ns, digest));
    if (!record) throw blobNotFound(digest);
    return toInfo(digest, record);
  }

  async update(
    ctx: OpContext,
    info: Pick<ContentInfo, 'digest'> & Partial<Pick<ContentInfo, 'labels'>>,
    fieldpaths?: readonly string[],
  ): Promise<ContentInfo> {
    const ns = requireNamespace(ctx);
    validateDigest(info.digest);
    const key = keys.blob(ns, info.digest);
    const result = await this.db.update(
      (r) => {
        const record = r.get<BlobRecord>(key);
        if (!record) throw blobNotFound(info.digest);
        const labels = applyLabelUpdate(record.labels, info.labels, fieldpaths, `content info "${info.digest}"`);
        const next: BlobRecord = { ...record, labels, updatedAt: Date.now() };
        r.put(key, next);
        return { info: toInfo(info.digest, next), lost: labelsLostSomething(record.labels, labels) };
      },
      // Dropping a gc.ref/gc.root label can make something collectable.
      (res) => (res.lost ? 'delete' : 'write'),
    );
    return result.info;
  }

  /**
   * Every blob of the namespace that matches, as one LMDB snapshot taken when the walk starts (Records.scan): a
   * blob added or removed meanwhile is not seen, or still seen. The walk lets the event loop run every few
   * milliseconds, so a big namespace or a costly filter never holds the daemon.
   */
  async *list(ctx: OpContext, filters: readonly string[] = []): AsyncIterable<ContentInfo> {
    const ns = requireNamespace(ctx);
    const filter = parseFilters(filters);
    this.db.assertOpen();
    const slice = new TimeSlice();
    for (const { key, value } of this.db.records.scan<BlobRecord>(keys.blobs(ns), depth.blob)) {
      const info = toInfo(key[4]!, value);
      if (await filter.match(adaptInfo(info))) yield info;
      await slice.pause();
    }
  }

  async delete(ctx: OpContext, digest: string): Promise<void> {
    const ns = requireNamespace(ctx);
    validateDigest(digest);
    await this.db.update((r) => {
      if (!r.has(keys.blob(ns, digest))) throw blobNotFound(digest);
      r.remove(keys.blob(ns, digest));
      removeFromContextLease(r, ctx, { type: 'content', id: digest });
      this.db.dirtyContent = true;
    }, 'delete');
    // Whoever deletes (the gRPC service, an image delete, a CLI-side composition), subscribers hear of it.
    if (this.events) await publishEvent(this.events, ns, '/content/delete', 'containerd.events.ContentDelete', { digest });
  }

  async reader(ctx: OpContext, digest: string): Promise<ContentReader> {
    // info() without building the info: clients read a blob in many small Read calls.
    const ns = requireNamespace(ctx);
    validateDigest(digest);
    this.db.assertOpen();
    if (!this.db.records.has(keys.blob(ns, digest))) throw blobNotFound(digest);
    return this.raw.reader(rawContext(ctx), digest);
  }

  async status(ctx: OpContext, ref: string): Promise<IngestStatus> {
    const ns = requireNamespace(ctx);
    this.db.assertOpen();
    const record = this.db.records.get<IngestRecord>(keys.ingest(ns, ref));
    if (!record) throw refNotFound(ref);
    return this.ingestStatus(ctx, ref, record);
  }

  async listStatuses(ctx: OpContext, filters: readonly string[] = []): Promise<IngestStatus[]> {
    const ns = requireNamespace(ctx);
    const filter = parseFilters(filters);
    this.db.assertOpen();
    const ingests = this.db.records.scan<IngestRecord>(keys.ingests(ns), depth.ingest);
    const out: IngestStatus[] = [];
    for (const { key, value } of ingests) {
      const ref = key[4]!;
      let status: IngestStatus;
      try {
        status = await this.ingestStatus(ctx, ref, value);
      } catch (err) {
        if (isNotFound(err)) continue;
        throw err;
      }
      if (await filter.match(adaptLabelled({ ref: status.ref }, {}))) out.push(status);
    }
    return out;
  }

  async abort(ctx: OpContext, ref: string): Promise<void> {
    const ns = requireNamespace(ctx);
    const key = keys.ingest(ns, ref);
    await this.db.mutate(async (m) => {
      const record = this.db.records.get<IngestRecord>(key);
      if (!record) throw refNotFound(ref);
      try {
        await this.raw.abort(rawContext(ctx), record.ref);
      } catch (err) {
        // A shared ingest that never copied has no backend ingest.
        if (!isNotFound(err)) throw err;
      }
      await m.txn((r) => {
        if (!r.has(key)) throw refNotFound(ref);
        r.remove(key);
        removeFromContextLease(r, ctx, { type: 'ingests', id: ref });
        this.db.dirtyContent = true;
      }, 'delete');
    });
  }

  async writer(ctx: OpContext, options: WriterOptions): Promise<ContentWriter> {
    const ns = requireNamespace(ctx);
    if (!options.ref) throw new InvalidArgumentError('ref must not be empty');
    validateKeyPart(options.ref, 'ref');
    const ref = options.ref;
    const expected = options.expected ?? '';
    if (expected) validateDigest(expected, 'expected digest');
    let total = options.total ?? 0;
    if (!Number.isSafeInteger(total) || total < 0) throw new InvalidArgumentError(`invalid total size ${total}`);

    return this.db.mutate(async (m) => {
      // Already committed in this namespace: lease it (so the caller's lease holds it) and say so.
      if (expected && this.db.records.has(keys.blob(ns, expected))) {
        const exists = await m.txn((r) => {
          if (!r.has(keys.blob(ns, expected))) return false;
          addToContextLease(r, ctx, { type: 'content', id: expected });
          return true;
        });
        if (exists) throw new AlreadyExistsError(`content ${expected}: already exists`);
      }

      // Shared policy: the backend already has the blob (another namespace wrote it), so commit only links it.
      let shared = false;
      if (expected && this.policy.shared) {
        try {
          const info = await this.raw.info(rawContext(ctx), expected);
          if (total === 0 || total === info.size) {
            shared = true;
            total = info.size;
          }
        } catch (err) {
          if (!isNotFound(err)) throw err;
        }
      }

      const key = keys.ingest(ns, ref);
      const { record, created } = await m.txn((r) => {
        checkContextLease(r, ctx);
        ensureNamespace(r, ns);
        const existing = r.get<IngestRecord>(key);
        const next: { -readonly [K in keyof IngestRecord]: IngestRecord[K] } = existing
          ? { ...existing }
          : { ref: `${ns}/${this.db.nextIngestSequence(r)}/${ref}`, startedAt: Date.now() };
        if (ctx.lease) addToContextLease(r, ctx, { type: 'ingests', id: ref });
        // An unleased ingest may be collected once stale; a leased one lives as long as its lease.
        else next.expireAt = Date.now() + this.policy.ingestExpiryMs;
        if (expected) next.expected = expected;
        if (shared) {
          next.shared = true;
          next.size = total;
        }
        r.put(key, next);
        return { record: next as IngestRecord, created: !existing };
      });

      if (shared) return new NamespacedWriter(this, ctx, ns, ref, record, { digest: expected, size: total }, null);
      try {
        // The expected digest stays out of the backend: it was checked against this namespace only.
        const w = await this.raw.writer(rawContext(ctx), { ref: record.ref, total });
        return new NamespacedWriter(this, ctx, ns, ref, record, { digest: record.expected ?? '', size: total }, w);
      } catch (err) {
        this.db.dirtyContent = true;
        if (created) {
          // Undo the record this call created; if that fails too, GC removes it once it expires or its lease goes.
          await m
            .txn((r) => {
              r.remove(key);
              removeFromContextLease(r, ctx, { type: 'ingests', id: ref });
            }, 'delete')
            .catch((cleanup: unknown) => this.db.log.warn('removing ingest record failed', { ref, error: cleanup }));
        }
        throw err;
      }
    });
  }

  /** @internal Status of an ingest by its record, with the client's ref. */
  async ingestStatus(ctx: OpContext, ref: string, record: IngestRecord): Promise<IngestStatus> {
    try {
      const status = await this.raw.status(rawContext(ctx), record.ref);
      return { ...status, ref, expected: record.expected ?? status.expected };
    } catch (err) {
      if (!isNotFound(err)) throw err;
      if (record.shared && record.expected) return sharedStatus(ref, record.expected, record.size ?? 0, record.startedAt);
      throw refNotFound(ref);
    }
  }

  /** @internal The backend store. */
  get backend(): RawContentStore {
    return this.raw;
  }

  /** @internal Commits a writer: backend commit and blob record, atomic against garbage collection. */
  async commitWriter(
    w: NamespacedWriter,
    size: number,
    expected: string,
    options: CommitOptions | undefined,
  ): Promise<void> {
    if (!Number.isSafeInteger(size) || size < 0) throw new InvalidArgumentError(`invalid commit size ${size}`);
    if (expected) validateDigest(expected, 'expected digest');
    validateLabels(options?.labels);
    const labels: Labels = cleanLabels(options?.labels);
    const { ctx, ns, ref } = w;
    const backendWriter = w.backendWriter;
    await this.db.mutate(async (m: Mutation) => {
      let actual: string;
      let finalSize: number;
      try {
        // Fail before touching the backend when the lease is gone.
        checkContextLease(this.db.records, ctx);
        if (!backendWriter) {
          if (size !== 0 && size !== w.desc.size) {
            throw new FailedPreconditionError(`"${ref}" failed size validation: ${w.desc.size} != ${size}`);
          }
          if (expected && expected !== w.desc.digest) throw new FailedPreconditionError(`"${ref}" unexpected digest`);
          // The ingest record kept the blob alive until now; make sure nobody removed it meanwhile.
          await this.raw.info(rawContext(ctx), w.desc.digest);
          actual = w.desc.digest;
          finalSize = w.desc.size;
        } else {
          const status = await backendWriter.status();
          if (size !== 0 && size !== status.offset) {
            throw new FailedPreconditionError(`"${ref}" failed size validation: ${status.offset} != ${size}`);
          }
          finalSize = status.offset;
          actual = backendWriter.digest();
          try {
            await backendWriter.commit(finalSize, expected);
          } catch (err) {
            if (!isAlreadyExists(err)) throw err;
          }
        }
      } catch (err) {
        // As containerd: a failed commit releases the ref (the ingest stays resumable).
        await backendWriter?.close().catch(() => undefined);
        throw err;
      }
      const now = Date.now();
      const alreadyHere = await m
        .txn((r) => {
          ensureNamespace(r, ns);
          const exists = r.has(keys.blob(ns, actual));
          if (!exists) r.put(keys.blob(ns, actual), { size: finalSize, createdAt: now, updatedAt: now, labels } satisfies BlobRecord);
          r.remove(keys.ingest(ns, ref));
          removeFromContextLease(r, ctx, { type: 'ingests', id: ref });
          addToContextLease(r, ctx, { type: 'content', id: actual });
          return exists;
        })
        .catch((err: unknown) => {
          // E.g. the lease went away meanwhile: the backend may now hold bytes no record names.
          this.db.dirtyContent = true;
          throw err;
        });
      if (alreadyHere) throw new AlreadyExistsError(`content ${actual}: already exists`);
    });
  }

  /**
   * @internal Gives a shared writer a backend ingest, empty: the client is (re)writing the blob itself. containerd
   * copies the existing bytes first and appends, which can only fail verification since the shared writer already
   * stood at the blob's full size; starting over makes a client that writes from 0 succeed.
   */
  async unshare(w: NamespacedWriter): Promise<ContentWriter> {
    const backendWriter = await this.raw.writer(rawContext(w.ctx), { ref: w.backendRef, total: w.desc.size });
    try {
      if ((await backendWriter.status()).offset > 0) await backendWriter.truncate(0);
    } catch (err) {
      await backendWriter.close();
      throw err;
    }
    return backendWriter;
  }
}

function sharedStatus(ref: string, expected: string, size: number, startedAt: number): IngestStatus {
  return {
    ref,
    offset: size,
    total: size,
    expected,
    startedAt: new Date(startedAt),
    updatedAt: new Date(startedAt),
  };
}

/**
 * A writer in one namespace. Normally it wraps a backend writer on the backend ref; a *shared* writer (the blob is
 * already in the backend) has none and stands at the blob's full size, so a client that checks the status just
 * commits, which links the blob into the namespace. Writing or truncating gives it a fresh backend ingest.
 */
export class NamespacedWriter implements ContentWriter {
  private w: ContentWriter | null;

  constructor(
    private readonly store: LmdbContentStore,
    readonly ctx: OpContext,
    readonly ns: string,
    readonly ref: string,
    private readonly record: IngestRecord,
    readonly desc: { readonly digest: string; readonly size: number },
    backendWriter: ContentWriter | null,
  ) {
    this.w = backendWriter;
  }

  get backendRef(): string {
    return this.record.ref;
  }

  get backendWriter(): ContentWriter | null {
    return this.w;
  }

  async status(): Promise<IngestStatus> {
    if (!this.w) return sharedStatus(this.ref, this.desc.digest, this.desc.size, this.record.startedAt);
    const status = await this.w.status();
    return { ...status, ref: this.ref, expected: this.desc.digest || status.expected };
  }

  digest(): string {
    return this.w ? this.w.digest() : this.desc.digest;
  }

  async write(data: Uint8Array): Promise<void> {
    if (!this.w) {
      if (data.length === 0) return;
      this.w = await this.store.unshare(this);
    }
    await this.w.write(data);
  }

  async truncate(size: number): Promise<void> {
    if (this.w) return this.w.truncate(size);
    if (size !== 0) throw new NotImplementedError(`truncate to ${size}: only 0 is supported`);
    this.w = await this.store.unshare(this);
  }

  commit(size: number, expected: string, options?: CommitOptions): Promise<void> {
    return this.store.commitWriter(this, size, expected, options);
  }

  async close(): Promise<void> {
    await this.w?.close();
  }
}
