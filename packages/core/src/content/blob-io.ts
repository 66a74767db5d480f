/**
 * The client side of the Write protocol, once, over the content roles: write a whole blob through an ingester
 * (resuming an ingest left by an earlier try), and read one through a provider. The CLI's `content ingest` and
 * `fetch-blob`, and everything that pulls or pushes later, use these against whichever store they hold (the daemon's
 * namespaced store, or a proxy of it over the wire).
 */
import { InvalidArgumentError, isAlreadyExists } from '../errdefs/index.js';
import type { ContentIngester, ContentProvider, ContentScope, IngestManager } from '../kinds/content.js';
import type { Labels, OpContext } from '../kinds/context.js';

/** Bytes per write() (ctr copies with a 1 MiB buffer; a proxy sends one WRITE message per call). */
export const BLOB_WRITE_CHUNK = 1 << 20;

/** Input of a write: a stream from the start (bytes before a resume offset are skipped), or one opened at an offset. */
export type BlobSource = AsyncIterable<Uint8Array | string> | ((offset: number) => AsyncIterable<Uint8Array | string>);

export interface WriteBlobOptions {
  readonly ref: string;
  /** Expected size, 0 or absent when unknown. */
  readonly total?: number;
  /** Expected digest, '' or absent when unknown. */
  readonly expected?: string;
  readonly labels?: Labels;
  readonly onProgress?: (offset: number, total: number) => void;
  /**
   * Abort the ingest when its commit fails (wrong size or digest), so the next try starts from zero instead of
   * resuming bytes that can never verify. Off by default: `ctr content ingest` keeps the ingest.
   */
  readonly discardOnCommitFailure?: boolean;
}

export interface WriteBlobResult {
  readonly digest: string;
  readonly size: number;
  /** True when the store already had the blob (containerd's clients treat that as success). */
  readonly existed: boolean;
}

/**
 * Writes a blob as containerd's content.WriteBlob does: open the ref (AlreadyExists when the expected blob is there),
 * resume at the ingest's offset (skipping that many input bytes, or opening a function source there), write, commit.
 * A function source is not called at all when the store already has the blob.
 */
export async function writeBlob<S extends ContentScope>(
  store: ContentIngester<S> & IngestManager<S>,
  ctx: OpContext,
  source: BlobSource,
  options: WriteBlobOptions,
): Promise<WriteBlobResult> {
  const total = options.total ?? 0;
  const expected = options.expected ?? '';
  let writer;
  try {
    writer = await store.writer(ctx, { ref: options.ref, total, expected });
  } catch (err) {
    if (isAlreadyExists(err)) return { digest: expected, size: total, existed: true };
    throw err;
  }
  let discard = false;
  try {
    const status = await writer.status();
    let offset = status.offset;
    options.onProgress?.(offset, status.total || total);
    const input = typeof source === 'function' ? rechunk(source(offset), BLOB_WRITE_CHUNK) : rechunk(source, BLOB_WRITE_CHUNK, offset);
    for await (const data of input) {
      await writer.write(data);
      offset += data.length;
      options.onProgress?.(offset, total);
    }
    const digest = writer.digest();
    try {
      await writer.commit(total, expected, options.labels ? { labels: options.labels } : undefined);
    } catch (err) {
      if (isAlreadyExists(err)) return { digest: expected || digest, size: offset, existed: true };
      discard = options.discardOnCommitFailure === true;
      throw err;
    }
    return { digest, size: offset, existed: false };
  } finally {
    await writer.close().catch(() => undefined);
    // After the writer is closed, so the ref is no longer locked by it.
    if (discard) await store.abort(ctx, options.ref).catch(() => undefined);
  }
}

/** Streams a blob (or `length` bytes of it from `offset`) through a provider, closing the reader at the end. */
export async function* readBlob<S extends ContentScope>(
  store: ContentProvider<S>,
  ctx: OpContext,
  digest: string,
  offset?: number,
  length?: number,
): AsyncGenerator<Buffer> {
  const reader = await store.reader(ctx, digest);
  try {
    yield* reader.stream(offset, length);
  } finally {
    await reader.close();
  }
}

/** Re-cuts a byte stream into chunks of `size` bytes (the last may be shorter), after dropping `skip` bytes. */
export async function* rechunk(source: AsyncIterable<Uint8Array | string>, size: number, skip = 0): AsyncGenerator<Buffer> {
  let parts: Buffer[] = [];
  let length = 0;
  let toSkip = skip;
  for await (const piece of source) {
    let chunk = typeof piece === 'string' ? Buffer.from(piece) : Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength);
    if (toSkip > 0) {
      const dropped = Math.min(toSkip, chunk.length);
      chunk = chunk.subarray(dropped);
      toSkip -= dropped;
    }
    if (chunk.length === 0) continue;
    parts.push(chunk);
    length += chunk.length;
    while (length >= size) {
      const all = parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts, length);
      yield all.subarray(0, size);
      parts = length > size ? [all.subarray(size)] : [];
      length -= size;
    }
  }
  if (toSkip > 0) throw new InvalidArgumentError(`input ended ${toSkip} bytes before the offset of the existing ingest`);
  if (length > 0) yield Buffer.concat(parts, length);
}
