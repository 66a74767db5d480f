/**
 * A content store in memory, for the tests of plugins that consume one (a metadata store over a raw store, a
 * differ over a reader, a service over the namespaced store). It keeps every promise of the `ContentStore`
 * interface (the conformance suite runs on it), with either scope. Namespaces are ignored: a namespaced store in
 * memory is one namespace's view, which is what a consumer's unit test needs.
 */
import type { Hash } from 'node:crypto';
import { digestSoFar, newDigester, digestHex, validateDigest } from '../digest/digest.js';
import {
  AlreadyExistsError,
  FailedPreconditionError,
  InvalidArgumentError,
  NotFoundError,
  NotImplementedError,
  UnavailableError,
} from '../errdefs/index.js';
import { adaptObject } from '../filters/adaptor.js';
import { parseFilters } from '../filters/filter.js';
import type {
  CommitOptions,
  ContentInfo,
  ContentReader,
  ContentScope,
  ContentStore,
  ContentWriter,
  IngestStatus,
  WriterOptions,
} from '../kinds/content.js';
import type { Labels, OpContext } from '../kinds/context.js';
import { validateLabels } from '../identifiers/validate.js';
import { applyLabelUpdate, cleanLabels } from '../labels/labels.js';

interface Blob {
  readonly data: Buffer;
  readonly createdAt: Date;
  updatedAt: Date;
  labels: Labels;
}

interface Ingest {
  chunks: Buffer[];
  offset: number;
  hash: Hash;
  total: number;
  expected: string;
  readonly startedAt: Date;
  updatedAt: Date;
}

const STREAM_CHUNK = 256 * 1024;

export class MemoryContentStore<S extends ContentScope = 'namespaced'> implements ContentStore<S> {
  private readonly blobs = new Map<string, Blob>();
  private readonly ingests = new Map<string, Ingest>();
  private readonly locked = new Set<string>();

  constructor(readonly scope: S) {}

  /** Digests of the committed blobs (assertions). */
  digests(): string[] {
    return [...this.blobs.keys()];
  }

  async info(_ctx: OpContext, digest: string): Promise<ContentInfo> {
    return toInfo(digest, this.blob(digest));
  }

  async update(_ctx: OpContext, info: Pick<ContentInfo, 'digest'> & Partial<Pick<ContentInfo, 'labels'>>, fieldpaths?: readonly string[]): Promise<ContentInfo> {
    const blob = this.blob(info.digest);
    blob.labels = applyLabelUpdate(blob.labels, info.labels, fieldpaths, `content info ${JSON.stringify(info.digest)}`);
    blob.updatedAt = new Date();
    return toInfo(info.digest, blob);
  }

  async *list(_ctx: OpContext, filters: readonly string[] = []): AsyncIterable<ContentInfo> {
    const filter = parseFilters(filters);
    for (const [digest, blob] of [...this.blobs]) {
      const info = toInfo(digest, blob);
      if (await filter.match(adaptObject({ digest, size: info.size, labels: info.labels }))) yield info;
    }
  }

  async delete(_ctx: OpContext, digest: string): Promise<void> {
    this.blob(digest);
    this.blobs.delete(digest);
  }

  async reader(_ctx: OpContext, digest: string): Promise<ContentReader> {
    const { data } = this.blob(digest);
    return {
      size: data.length,
      read: async (offset, length) => Buffer.from(data.subarray(offset, offset + length)),
      stream: async function* (offset = 0, length = data.length - offset) {
        const end = Math.min(data.length, offset + length);
        for (let at = offset; at < end; at += STREAM_CHUNK) yield Buffer.from(data.subarray(at, Math.min(end, at + STREAM_CHUNK)));
      },
      close: async () => undefined,
    };
  }

  async status(_ctx: OpContext, ref: string): Promise<IngestStatus> {
    return toStatus(ref, this.ingest(ref));
  }

  async listStatuses(_ctx: OpContext, filters: readonly string[] = []): Promise<IngestStatus[]> {
    const filter = parseFilters(filters);
    const out: IngestStatus[] = [];
    for (const [ref, ingest] of [...this.ingests]) if (await filter.match(adaptObject({ ref }))) out.push(toStatus(ref, ingest));
    return out;
  }

  async abort(_ctx: OpContext, ref: string): Promise<void> {
    this.ingest(ref);
    this.ingests.delete(ref);
  }

  async writer(_ctx: OpContext, options: WriterOptions): Promise<ContentWriter> {
    const { ref } = options;
    if (!ref) throw new InvalidArgumentError('ref must not be empty');
    if (options.expected) {
      digestHex(options.expected, 'expected digest');
      if (this.blobs.has(options.expected)) throw new AlreadyExistsError(`content ${options.expected}`);
    }
    if (this.locked.has(ref)) throw new UnavailableError(`ref ${ref} locked`);
    let ingest = this.ingests.get(ref);
    if (!ingest) {
      const now = new Date();
      ingest = { chunks: [], offset: 0, hash: newDigester(), total: 0, expected: '', startedAt: now, updatedAt: now };
      this.ingests.set(ref, ingest);
    }
    if (options.total) ingest.total = options.total;
    if (options.expected) ingest.expected = options.expected;
    this.locked.add(ref);
    return new MemoryWriter(ref, ingest, this);
  }

  /** @internal Called by a writer. */
  release(ref: string): void {
    this.locked.delete(ref);
  }

  /** @internal Called by a writer's commit. */
  commitIngest(ref: string, ingest: Ingest, size: number, expected: string, options: CommitOptions | undefined): void {
    if (expected) validateDigest(expected, 'expected digest');
    validateLabels(options?.labels);
    if (size > 0 && size !== ingest.offset) {
      throw new FailedPreconditionError(`unexpected commit size ${ingest.offset}, expected ${size}`);
    }
    const digest = digestSoFar(ingest.hash);
    if (expected && expected !== digest) throw new FailedPreconditionError(`unexpected commit digest ${digest}, expected ${expected}`);
    this.ingests.delete(ref);
    if (this.blobs.has(digest)) throw new AlreadyExistsError(`content ${digest}`);
    const now = new Date();
    this.blobs.set(digest, { data: Buffer.concat(ingest.chunks), createdAt: now, updatedAt: now, labels: cleanLabels(options?.labels) });
  }

  private blob(digest: string): Blob {
    digestHex(digest);
    const blob = this.blobs.get(digest);
    if (!blob) throw new NotFoundError(`content digest ${digest}`);
    return blob;
  }

  private ingest(ref: string): Ingest {
    const ingest = this.ingests.get(ref);
    if (!ingest) throw new NotFoundError(`ref ${ref}`);
    return ingest;
  }
}

class MemoryWriter implements ContentWriter {
  private closed = false;

  constructor(
    readonly ref: string,
    private readonly ingest: Ingest,
    private readonly store: MemoryContentStore<ContentScope>,
  ) {}

  async status(): Promise<IngestStatus> {
    return toStatus(this.ref, this.ingest);
  }

  digest(): string {
    return digestSoFar(this.ingest.hash);
  }

  async write(data: Uint8Array): Promise<void> {
    this.assertOpen();
    const chunk = Buffer.from(data);
    this.ingest.chunks.push(chunk);
    this.ingest.hash.update(chunk);
    this.ingest.offset += chunk.length;
    this.ingest.updatedAt = new Date();
  }

  async truncate(size: number): Promise<void> {
    this.assertOpen();
    if (size !== 0) throw new NotImplementedError('truncate to a size other than 0');
    this.ingest.chunks = [];
    this.ingest.hash = newDigester();
    this.ingest.offset = 0;
  }

  async commit(size: number, expected: string, options?: CommitOptions): Promise<void> {
    this.assertOpen();
    try {
      this.store.commitIngest(this.ref, this.ingest, size, expected, options);
    } finally {
      await this.close();
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.store.release(this.ref);
  }

  private assertOpen(): void {
    if (this.closed) throw new FailedPreconditionError(`writer for ${this.ref} is closed`);
  }
}

function toInfo(digest: string, blob: Blob): ContentInfo {
  return { digest, size: blob.data.length, createdAt: blob.createdAt, updatedAt: blob.updatedAt, labels: { ...blob.labels } };
}

function toStatus(ref: string, ingest: Ingest): IngestStatus {
  return { ref, offset: ingest.offset, total: ingest.total, expected: ingest.expected, startedAt: ingest.startedAt, updatedAt: ingest.updatedAt };
}

/** A fresh in-memory store of the given scope (`raw` stands in for io.containerd.content.v1, `namespaced` for the metadata plugin's view). */
export function createMemoryContentStore<S extends ContentScope = 'namespaced'>(scope: S = 'namespaced' as S): MemoryContentStore<S> {
  return new MemoryContentStore(scope);
}
