import { constants } from 'node:fs';
import { chmod, mkdir, open, opendir, readdir, rename, rm, stat, unlink, utimes, type FileHandle } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import {
  AlreadyExistsError,
  CANONICAL_ALGORITHM,
  DataLossError,
  digestHex,
  FailedPreconditionError,
  InvalidArgumentError,
  NotFoundError,
  MetricsRegistry,
  UnavailableError,
  applyLabelUpdate,
  validateLabels,
  hasErrno,
  isSha256Hex,
  newDigester,
  parseFilters,
  sha256Hex,
  syncDir,
  writeFileAtomic,
  TMP_SUFFIX,
  type Adaptor,
  type ContentInfo,
  type ContentReader,
  type RawContentStore,
  type ContentWriter,
  type IngestStatus,
  type Labels,
  type Logger,
  type OpContext,
  type WriterOptions,
} from '@berth/core';
import { formatTimestamp, parseTimestamp, readTextIfExists } from './fs-util.js';
import { LabelStore } from './label-store.js';
import { KeyedMutex, RefLocks } from './mutex.js';
import { OpenBlobs } from './open-blobs.js';
import { LocalContentReader, READ_CHUNK_SIZE } from './reader.js';
import { LocalContentWriter, type IngestHost, type OpenIngest } from './writer.js';

export interface LocalContentStoreOptions {
  /** The store's directory (the plugin's root, `<root>/io.containerd.content.v1.content`). */
  readonly root: string;
  readonly log?: Logger;
  /** Where the store counts commits and deletions (the plugin's registry on /v1/metrics). */
  readonly metrics?: MetricsRegistry;
}

/** Names of the files of one ingest directory. */
const INGEST = { ref: 'ref', data: 'data', startedAt: 'startedat', updatedAt: 'updatedat', total: 'total', expected: 'expected' } as const;

/**
 * containerd's local content store on the same layout: committed blobs in `blobs/sha256/<hex>` (read only), one
 * directory per ingest in `ingest/<sha256hex(ref)>/`, plus `labels.json` for the raw store's own labels.
 * Not namespaced (the metadata plugin namespaces it); one instance per directory.
 */
export class LocalContentStore implements RawContentStore {
  readonly scope = 'raw' as const;
  readonly root: string;
  private readonly blobDir: string;
  private readonly ingestRoot: string;
  private readonly locks = new RefLocks();
  private readonly commits = new KeyedMutex();
  private readonly writers = new Set<LocalContentWriter>();
  private readonly readers = new Set<ContentReader>();
  private readonly openBlobs = new OpenBlobs();
  private closed = false;
  private readonly meter: ReturnType<typeof meterOf>;

  private constructor(
    root: string,
    private readonly labels: LabelStore,
    private readonly log: Logger | undefined,
    metrics: MetricsRegistry,
  ) {
    this.meter = meterOf(metrics);
    this.root = root;
    this.blobDir = join(root, 'blobs', CANONICAL_ALGORITHM);
    this.ingestRoot = join(root, 'ingest');
  }

  /** Creates the layout if needed, removes debris of interrupted ingests and loads the labels. */
  static async open(options: LocalContentStoreOptions): Promise<LocalContentStore> {
    const root = resolve(options.root);
    await mkdir(join(root, 'blobs', CANONICAL_ALGORITHM), { recursive: true });
    await mkdir(join(root, 'ingest'), { recursive: true });
    await removeTmpFiles(root);
    await cleanIngests(join(root, 'ingest'), options.log);
    const labels = await LabelStore.open(join(root, 'labels.json'), options.log);
    const store = new LocalContentStore(root, labels, options.log, options.metrics ?? new MetricsRegistry());
    await store.pruneLabels();
    return store;
  }

  // ---- blobs ----

  async info(ctx: OpContext, digest: string): Promise<ContentInfo> {
    this.check(ctx);
    const hex = digestHex(digest);
    const st = await this.statBlob(digest, hex);
    return this.describe(digest, st.size, st.mtime);
  }

  async update(
    ctx: OpContext,
    info: Pick<ContentInfo, 'digest'> & Partial<Pick<ContentInfo, 'labels'>>,
    fieldpaths: readonly string[] = [],
  ): Promise<ContentInfo> {
    this.check(ctx);
    const { digest } = info;
    const hex = digestHex(digest);
    // Checked before the blob is looked at, so a bad path fails the same way whether or not the blob exists.
    applyLabelUpdate({}, {}, fieldpaths, `content info ${JSON.stringify(digest)}`);
    const st = await this.statBlob(digest, hex);
    const meta = await this.labels.modify(
      digest,
      (current) => applyLabelUpdate(current, info.labels, fieldpaths, `content info ${JSON.stringify(digest)}`),
      new Date(),
    );
    return { digest, size: st.size, createdAt: st.mtime, updatedAt: meta.updatedAt, labels: meta.labels };
  }


  async *list(ctx: OpContext, filters?: readonly string[]): AsyncIterable<ContentInfo> {
    this.check(ctx);
    const match = compileFilters(filters);
    const dir = await opendir(this.blobDir, { bufferSize: 256 });
    for await (const entry of dir) {
      ctx.signal?.throwIfAborted();
      if (!entry.isFile() || !isSha256Hex(entry.name)) continue;
      let st;
      try {
        st = await stat(join(this.blobDir, entry.name));
      } catch (err) {
        if (hasErrno(err, 'ENOENT')) continue; // deleted while listing
        throw err;
      }
      const info = this.describe(`${CANONICAL_ALGORITHM}:${entry.name}`, st.size, st.mtime);
      if (await match(infoAdaptor(info))) yield info;
    }
  }

  async delete(ctx: OpContext, digest: string): Promise<void> {
    this.check(ctx);
    const hex = digestHex(digest);
    try {
      await unlink(this.blobPath(hex));
    } catch (err) {
      if (hasErrno(err, 'ENOENT')) {
        // Gone behind the store's back: a cached handle must not keep serving it.
        this.openBlobs.forget(digest);
        throw new NotFoundError(`content ${digest}: not found`, { cause: err });
      }
      throw err;
    }
    this.openBlobs.forget(digest);
    this.meter.deletes.inc();
    await this.labels.delete(digest).catch((err: unknown) => {
      this.log?.warn('failed to forget labels of deleted content', { digest, error: err });
    });
  }

  async reader(ctx: OpContext, digest: string): Promise<ContentReader> {
    this.check(ctx);
    const hex = digestHex(digest);
    const inner = new LocalContentReader(await this.openBlobs.acquire(digest, this.blobPath(hex)), digest);
    // Track readers so close() of the store releases their file handles.
    const readers = this.readers;
    const tracked: ContentReader = {
      size: inner.size,
      read: (offset, length) => inner.read(offset, length),
      stream: (offset, length) => inner.stream(offset, length),
      close: async () => {
        readers.delete(tracked);
        await inner.close();
      },
    };
    readers.add(tracked);
    return tracked;
  }

  // ---- ingests ----

  async status(ctx: OpContext, ref: string): Promise<IngestStatus> {
    this.check(ctx);
    checkRef(ref);
    const status = await readIngestStatus(this.ingestDir(ref));
    if (!status || status.ref !== ref) throw new NotFoundError(`ingest ref ${JSON.stringify(ref)}: not found`);
    return status;
  }

  async listStatuses(ctx: OpContext, filters?: readonly string[]): Promise<IngestStatus[]> {
    this.check(ctx);
    const match = compileFilters(filters);
    const out: IngestStatus[] = [];
    for (const name of await readdir(this.ingestRoot)) {
      if (!isSha256Hex(name)) continue;
      const status = await readIngestStatus(join(this.ingestRoot, name));
      // Missing pieces mean the ingest is being created or committed right now: it does not exist (yet, anymore).
      if (status && (await match(statusAdaptor(status)))) out.push(status);
    }
    return out.sort((a, b) => (a.ref < b.ref ? -1 : a.ref > b.ref ? 1 : 0));
  }

  async abort(ctx: OpContext, ref: string): Promise<void> {
    this.check(ctx);
    checkRef(ref);
    const dir = this.ingestDir(ref);
    try {
      await stat(dir);
    } catch (err) {
      if (hasErrno(err, 'ENOENT')) throw new NotFoundError(`ingest ref ${JSON.stringify(ref)}: not found`, { cause: err });
      throw err;
    }
    // As in containerd, an open writer on the ref is not waited for: its commit will fail, its close is harmless.
    await rm(dir, { recursive: true, force: true });
  }

  async writer(ctx: OpContext, options: WriterOptions): Promise<ContentWriter> {
    this.check(ctx);
    const { ref } = options;
    checkRef(ref);
    const total = options.total ?? 0;
    if (!Number.isSafeInteger(total) || total < 0) throw new InvalidArgumentError(`invalid total ${total} for ref ${ref}`);
    const expected = options.expected ?? '';
    const expectedHex = expected ? digestHex(expected) : undefined;
    if (!this.locks.tryLock(ref)) {
      // containerd's wording, with the holder's age to tell a stuck writer from a contended one.
      const since = this.locks.lockedSince(ref);
      throw new UnavailableError(`ref ${ref} locked${since ? ` (since ${since.toISOString()})` : ''}`);
    }
    try {
      if (expectedHex !== undefined && (await exists(this.blobPath(expectedHex)))) {
        throw new AlreadyExistsError(`content ${expected}: already exists`);
      }
      const ingest = await this.openIngest(ref, total, expected);
      const writer = new LocalContentWriter(this.ingestHost, ingest);
      this.writers.add(writer);
      return writer;
    } catch (err) {
      this.locks.unlock(ref);
      throw err;
    }
  }

  /** Closes open writers (leaving their ingests resumable) and readers; later calls fail. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const results = await Promise.allSettled([
      ...[...this.writers].map((w) => w.close()),
      ...[...this.readers].map((r) => r.close()),
    ]);
    await this.openBlobs.close();
    for (const r of results) if (r.status === 'rejected') this.log?.warn('error closing content store', { error: r.reason });
  }

  // ---- internals ----

  private readonly ingestHost: IngestHost = {
    publish: (ingest) => this.publish(ingest),
    release: (writer) => {
      this.writers.delete(writer);
      this.locks.unlock(writer.ref);
    },
  };

  private check(ctx: OpContext): void {
    if (this.closed) throw new UnavailableError('content store is closed');
    ctx.signal?.throwIfAborted();
  }

  private blobPath(hex: string): string {
    return join(this.blobDir, hex);
  }

  private ingestDir(ref: string): string {
    return join(this.ingestRoot, sha256Hex(ref));
  }

  private async statBlob(digest: string, hex: string) {
    try {
      const st = await stat(this.blobPath(hex));
      if (st.isFile()) return st;
    } catch (err) {
      if (!hasErrno(err, 'ENOENT')) throw err;
    }
    throw new NotFoundError(`content ${digest}: not found`);
  }

  private describe(digest: string, size: number, createdAt: Date): ContentInfo {
    const meta = this.labels.get(digest);
    return { digest, size, createdAt, updatedAt: meta?.updatedAt ?? createdAt, labels: meta?.labels ?? {} };
  }

  private async openIngest(ref: string, total: number, expected: string): Promise<OpenIngest> {
    const dir = this.ingestDir(ref);
    try {
      await mkdir(dir);
    } catch (err) {
      if (!hasErrno(err, 'EEXIST')) throw err;
      const storedRef = await readTextIfExists(join(dir, INGEST.ref));
      if (storedRef === ref) return this.resumeIngest(dir, ref, total, expected);
      if (storedRef !== undefined) {
        throw new DataLossError(`ingest ${dir} holds ref ${JSON.stringify(storedRef)}, not ${JSON.stringify(ref)}`);
      }
      // No ref file: debris of a creation that never finished. Start over.
      await rm(dir, { recursive: true, force: true });
      await mkdir(dir);
    }
    try {
      return await createIngest(dir, ref, total, expected);
    } catch (err) {
      await rm(dir, { recursive: true, force: true }).catch(() => undefined);
      throw err;
    }
  }

  private async resumeIngest(dir: string, ref: string, total: number, expected: string): Promise<OpenIngest> {
    const storedTotal = parseTotal(await readTextIfExists(join(dir, INGEST.total)));
    const storedExpected = (await readTextIfExists(join(dir, INGEST.expected)))?.trim() ?? '';
    if (total > 0 && storedTotal > 0 && total !== storedTotal) {
      throw new FailedPreconditionError(`ref ${ref}: total ${total} differs from the ingest's total ${storedTotal}`);
    }
    if (expected && storedExpected && expected !== storedExpected) {
      throw new FailedPreconditionError(`ref ${ref}: expected ${expected} differs from the ingest's expected ${storedExpected}`);
    }
    if (total > 0 && storedTotal === 0) await writeFileAtomic(join(dir, INGEST.total), String(total));
    if (expected && !storedExpected) await writeFileAtomic(join(dir, INGEST.expected), expected);

    const dataPath = join(dir, INGEST.data);
    const fh = await open(dataPath, constants.O_WRONLY | constants.O_CREAT, 0o644);
    try {
      // Restore the running digest from the bytes on disk (containerd does the same; no resumable hash state).
      const hash = newDigester();
      const offset = await hashFile(dataPath, hash);
      const st = await fh.stat();
      const startedAt = parseTimestamp(await readTextIfExists(join(dir, INGEST.startedAt))) ?? st.mtime;
      const recorded = parseTimestamp(await readTextIfExists(join(dir, INGEST.updatedAt)));
      const updatedAt = recorded && recorded > st.mtime ? recorded : st.mtime;
      return {
        ref, dir, fh, offset, hash, startedAt, updatedAt,
        total: total || storedTotal,
        expected: expected || storedExpected,
      };
    } catch (err) {
      await fh.close();
      throw err;
    }
  }

  /** Makes a verified ingest a blob: read only, renamed into place, directory flushed. */
  private publish(ingest: { ref: string; dir: string; digest: string; labels?: Labels }): Promise<void> {
    const { ref, dir, digest } = ingest;
    // Before the rename: labels set after it could no longer fail the commit.
    validateLabels(ingest.labels);
    const target = this.blobPath(digestHex(digest));
    // Per-digest lock: two ingests of the same bytes must not both believe they created the blob.
    return this.commits.run(digest, async () => {
      if (await exists(target)) {
        await rm(dir, { recursive: true, force: true });
        throw new AlreadyExistsError(`content ${digest}: already exists`);
      }
      const data = join(dir, INGEST.data);
      const now = new Date();
      try {
        await chmod(data, 0o444);
        await utimes(data, now, now);
        await rename(data, target);
      } catch (err) {
        if (hasErrno(err, 'ENOENT')) throw new NotFoundError(`ingest ref ${JSON.stringify(ref)}: not found (aborted)`, { cause: err });
        throw err;
      }
      await syncDir(this.blobDir);
      this.meter.commits.inc();
      // The blob is visible now: what follows is tidying and must not turn the commit into a failure.
      await rm(dir, { recursive: true, force: true }).catch((err: unknown) => {
        this.log?.warn('failed to remove committed ingest', { ref, dir, error: err });
      });
      const labels = ingest.labels ?? {};
      const update = Object.keys(labels).length > 0 ? this.labels.set(digest, labels, now) : this.labels.delete(digest);
      await update.catch((err: unknown) => this.log?.warn('failed to set labels of committed content', { digest, error: err }));
    });
  }

  /** Forgets labels of blobs that are gone (deleted behind the store's back or before a crash). */
  private async pruneLabels(): Promise<void> {
    const gone: string[] = [];
    for (const digest of this.labels.digests()) {
      let hex: string;
      try {
        hex = digestHex(digest);
      } catch {
        gone.push(digest);
        continue;
      }
      if (!(await exists(this.blobPath(hex)))) gone.push(digest);
    }
    if (gone.length > 0) await this.labels.delete(...gone);
  }
}

// ---- ingest directories ----

async function createIngest(dir: string, ref: string, total: number, expected: string): Promise<OpenIngest> {
  const now = new Date();
  await writeFileAtomic(join(dir, INGEST.startedAt), formatTimestamp(now));
  await writeFileAtomic(join(dir, INGEST.updatedAt), formatTimestamp(now));
  if (total > 0) await writeFileAtomic(join(dir, INGEST.total), String(total));
  if (expected) await writeFileAtomic(join(dir, INGEST.expected), expected);
  const fh = await open(join(dir, INGEST.data), constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC, 0o644);
  try {
    // The ref file comes last: an ingest directory without one is debris of an interrupted creation.
    await writeFileAtomic(join(dir, INGEST.ref), ref);
  } catch (err) {
    await fh.close();
    throw err;
  }
  return { ref, dir, fh, offset: 0, hash: newDigester(), total, expected, startedAt: now, updatedAt: now };
}

/** The status of an ingest directory, or undefined when it is not (or no longer) a complete ingest. */
async function readIngestStatus(dir: string): Promise<IngestStatus | undefined> {
  const ref = await readTextIfExists(join(dir, INGEST.ref));
  if (ref === undefined) return undefined;
  let st;
  try {
    st = await stat(join(dir, INGEST.data));
  } catch (err) {
    if (hasErrno(err, 'ENOENT')) return undefined;
    throw err;
  }
  const startedAt = parseTimestamp(await readTextIfExists(join(dir, INGEST.startedAt))) ?? st.mtime;
  const recorded = parseTimestamp(await readTextIfExists(join(dir, INGEST.updatedAt)));
  // updatedat is written on close; while a writer is open, the data file's mtime is fresher.
  const updatedAt = recorded && recorded > st.mtime ? recorded : st.mtime;
  return {
    ref,
    offset: st.size,
    total: parseTotal(await readTextIfExists(join(dir, INGEST.total))),
    expected: (await readTextIfExists(join(dir, INGEST.expected)))?.trim() ?? '',
    startedAt,
    updatedAt,
  };
}

/**
 * Removes what a crash can leave in `ingest/`: directories without a `ref` (creation interrupted) or without `data`
 * (commit interrupted after the rename), directories whose name is not the hash of their ref, stray files and
 * temporary files.
 */
async function cleanIngests(ingestRoot: string, log?: Logger): Promise<void> {
  for (const entry of await readdir(ingestRoot, { withFileTypes: true })) {
    const path = join(ingestRoot, entry.name);
    let junk = !entry.isDirectory() || !isSha256Hex(entry.name);
    if (!junk) {
      const ref = await readTextIfExists(join(path, INGEST.ref));
      junk = ref === undefined || sha256Hex(ref) !== entry.name || !(await exists(join(path, INGEST.data)));
      if (!junk) await removeTmpFiles(path);
    }
    if (junk) {
      log?.info('removing incomplete ingest', { path });
      await rm(path, { recursive: true, force: true });
    }
  }
}

async function removeTmpFiles(dir: string): Promise<void> {
  for (const name of await readdir(dir)) {
    if (name.endsWith(TMP_SUFFIX)) await rm(join(dir, name), { force: true });
  }
}

/** Feeds a file through a hash with one reused buffer; returns its length. */
async function hashFile(path: string, hash: ReturnType<typeof newDigester>): Promise<number> {
  const fh: FileHandle = await open(path, 'r');
  try {
    const buf = Buffer.allocUnsafe(READ_CHUNK_SIZE);
    let position = 0;
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, position);
      if (bytesRead === 0) return position;
      hash.update(buf.subarray(0, bytesRead));
      position += bytesRead;
    }
  } finally {
    await fh.close();
  }
}

function parseTotal(text: string | undefined): number {
  const n = text === undefined ? NaN : Number(text.trim());
  return Number.isSafeInteger(n) && n > 0 ? n : 0;
}

function checkRef(ref: string): void {
  if (typeof ref !== 'string' || ref === '') throw new InvalidArgumentError('ref must not be empty');
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (err) {
    if (hasErrno(err, 'ENOENT')) return false;
    throw err;
  }
}

// ---- filters ----

function compileFilters(filters: readonly string[] | undefined): (adaptor: Adaptor) => boolean | Promise<boolean> {
  // ctr sends [""] for "no filter"; that needs no parser.
  if (!filters || filters.every((f) => f.trim() === '')) return () => true;
  const filter = parseFilters(filters);
  return (adaptor) => filter.match(adaptor);
}

/** Field paths of a blob for filters: `digest`, `size`, `labels.<key>` (keys may contain dots). */
export function infoAdaptor(info: ContentInfo): Adaptor {
  return (fieldpath) => {
    switch (fieldpath[0]) {
      case 'digest':
        return fieldpath.length === 1 ? info.digest : undefined;
      case 'size':
        return fieldpath.length === 1 ? String(info.size) : undefined;
      case 'labels':
        if (fieldpath.length < 2) return undefined;
        const key = fieldpath.slice(1).join('.');
        return Object.hasOwn(info.labels, key) ? info.labels[key] : undefined;
      default:
        return undefined;
    }
  };
}

/** Field paths of an ingest for filters: `ref`. */
export function statusAdaptor(status: IngestStatus): Adaptor {
  return (fieldpath) => (fieldpath.length === 1 && fieldpath[0] === 'ref' ? status.ref : undefined);
}

/** The store's metrics: blobs made visible and blobs removed (by the metadata plugin's GC, mostly). */
function meterOf(registry: MetricsRegistry) {
  return {
    commits: registry.counter('berth_content_commits_total', 'Blobs committed to the local content store.'),
    deletes: registry.counter('berth_content_deletes_total', 'Blobs deleted from the local content store.'),
  };
}
