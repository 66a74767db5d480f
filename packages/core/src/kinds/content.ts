import type { Labels, OpContext } from './context.js';

/** A committed blob as the content store describes it. */
export interface ContentInfo {
  readonly digest: string;
  readonly size: number;
  readonly createdAt: Date;
  readonly updatedAt: Date;
  readonly labels: Labels;
}

/** An active ingest (containerd's content.Status). `expected` is '' when unknown; `total` 0 when unknown. */
export interface IngestStatus {
  readonly ref: string;
  readonly offset: number;
  readonly total: number;
  readonly expected: string;
  readonly startedAt: Date;
  readonly updatedAt: Date;
}

/** Random access to one blob. Reads never hold the whole blob in memory. */
export interface ContentReader {
  readonly size: number;
  /** Reads up to `length` bytes at `offset` (fewer only at the end of the blob). */
  read(offset: number, length: number): Promise<Buffer>;
  /** Streams `length` bytes (default: to the end) from `offset` in chunks. */
  stream(offset?: number, length?: number): AsyncIterable<Buffer>;
  close(): Promise<void>;
}

export interface WriterOptions {
  readonly ref: string;
  /** Expected total size, 0 when unknown. */
  readonly total?: number;
  /** Expected digest, '' when unknown. */
  readonly expected?: string;
}

export interface CommitOptions {
  readonly labels?: Labels;
}

/**
 * An open ingest. One writer per ref at a time: a second `writer()` for the same ref fails with
 * UnavailableError(`ref … locked`). Closing without commit leaves the ingest resumable.
 */
export interface ContentWriter {
  readonly ref: string;
  status(): Promise<IngestStatus>;
  /** The digest of the bytes written so far. */
  digest(): string;
  /** Appends at the current offset. */
  write(data: Uint8Array): Promise<void>;
  /** Resets the ingest to `size` bytes (only 0 is supported, as in containerd). */
  truncate(size: number): Promise<void>;
  /**
   * Verifies `size` (when > 0) and `expected` (when non-empty) and makes the blob visible atomically.
   * AlreadyExistsError when the blob is already there (the ingest is removed either way).
   */
  commit(size: number, expected: string, options?: CommitOptions): Promise<void>;
  /** Releases the ref lock without committing. */
  close(): Promise<void>;
}

/**
 * Whose view of content an interface gives. `raw`: every blob on disk (the content plugin, io.containerd.content.v1;
 * the namespace of an OpContext is ignored). `namespaced`: what one namespace may see (the metadata plugin's view
 * over the raw store: a blob is visible in a namespace only once written or committed there). The two carry
 * different `scope` values, so one can never be passed where the other is required.
 */
export type ContentScope = 'namespaced' | 'raw';

interface Scoped<S extends ContentScope> {
  readonly scope: S;
}

/** Reading committed blobs (containerd's content.Provider + InfoProvider): what a differ or an unpacker needs. */
export interface ContentProvider<S extends ContentScope = 'namespaced'> extends Scoped<S> {
  info(ctx: OpContext, digest: string): Promise<ContentInfo>;
  reader(ctx: OpContext, digest: string): Promise<ContentReader>;
}

/** Writing blobs (containerd's content.Ingester). */
export interface ContentIngester<S extends ContentScope = 'namespaced'> extends Scoped<S> {
  writer(ctx: OpContext, options: WriterOptions): Promise<ContentWriter>;
}

/** Managing committed blobs (containerd's content.Manager). */
export interface ContentManager<S extends ContentScope = 'namespaced'> extends Scoped<S> {
  info(ctx: OpContext, digest: string): Promise<ContentInfo>;
  /** Updates labels; `fieldpaths` like `labels`, `labels.<key>`; none = replace all labels. Returns the result. */
  update(ctx: OpContext, info: Pick<ContentInfo, 'digest'> & Partial<Pick<ContentInfo, 'labels'>>, fieldpaths?: readonly string[]): Promise<ContentInfo>;
  /** Lists blobs matching any of the filters (containerd filter syntax over digest, size, labels.*). */
  list(ctx: OpContext, filters?: readonly string[]): AsyncIterable<ContentInfo>;
  delete(ctx: OpContext, digest: string): Promise<void>;
}

/** Managing ingests in progress (containerd's content.IngestManager). */
export interface IngestManager<S extends ContentScope = 'namespaced'> extends Scoped<S> {
  status(ctx: OpContext, ref: string): Promise<IngestStatus>;
  listStatuses(ctx: OpContext, filters?: readonly string[]): Promise<IngestStatus[]>;
  abort(ctx: OpContext, ref: string): Promise<void>;
}

/** Every role at once (containerd's content.Store). */
export interface ContentStore<S extends ContentScope = 'namespaced'>
  extends ContentProvider<S>,
    ContentIngester<S>,
    ContentManager<S>,
    IngestManager<S> {}

/** The content plugin's store: every blob on disk, whatever namespace refers to it. */
export type RawContentStore = ContentStore<'raw'>;
