// The ContentStore interface of @berth/core over berthd's Content service (containerd's content proxy): a plugin
// or command written against ContentStore works the same on a local store and on a remote daemon.
import { fromTimestamp, type containerd } from '@berth/api';
import {
  DataLossError,
  FailedPreconditionError,
  NotImplementedError,
  type CommitOptions,
  type ContentInfo,
  type ContentReader,
  type ContentStore,
  type ContentWriter,
  type IngestStatus,
  type OpContext,
  type WriterOptions,
} from '@berth/core';
import type { BerthClient } from '../client.js';
import { Lockstep } from '../lockstep.js';
import type { CallOptions } from '../service-client.js';

type WireInfo = containerd.services.content.v1.Info;
type WireStatus = containerd.services.content.v1.Status;
type WriteRequest = containerd.services.content.v1.WriteContentRequestInput;
type WriteResponse = containerd.services.content.v1.WriteContentResponse;

/** Largest WRITE payload: one write() is cut into messages of this size (far below the 16 MiB message limit). */
export const PROXY_WRITE_CHUNK_BYTES = 1 << 20;

const EPOCH = new Date(0);

/**
 * The per-call options of an operation. The OpContext is the authority: its namespace and lease are sent as they
 * are (no lease in the context sends none, whatever the client's default), its signal cancels the call.
 */
export function callOptionsOf(ctx: OpContext): CallOptions {
  return { namespace: ctx.namespace, lease: ctx.lease ?? '', ...(ctx.signal ? { signal: ctx.signal } : {}) };
}

export function toContentInfo(info: WireInfo): ContentInfo {
  return {
    digest: info.digest,
    size: info.size,
    createdAt: fromTimestamp(info.created_at) ?? EPOCH,
    updatedAt: fromTimestamp(info.updated_at) ?? EPOCH,
    labels: { ...info.labels },
  };
}

export function toIngestStatus(status: WireStatus): IngestStatus {
  return {
    ref: status.ref,
    offset: status.offset,
    total: status.total,
    expected: status.expected,
    startedAt: fromTimestamp(status.started_at) ?? EPOCH,
    updatedAt: fromTimestamp(status.updated_at) ?? EPOCH,
  };
}

/** A ContentStore whose every operation is a call to berthd's containerd.services.content.v1.Content. */
export class ContentStoreProxy implements ContentStore {
  readonly scope = 'namespaced' as const;

  constructor(private readonly client: BerthClient) {}

  async info(ctx: OpContext, digest: string): Promise<ContentInfo> {
    const { info } = await this.client.content.Info({ digest }, callOptionsOf(ctx));
    if (!info) throw new DataLossError(`no info returned for ${digest}`);
    return toContentInfo(info);
  }

  async update(
    ctx: OpContext,
    info: Pick<ContentInfo, 'digest'> & Partial<Pick<ContentInfo, 'labels'>>,
    fieldpaths?: readonly string[],
  ): Promise<ContentInfo> {
    const res = await this.client.content.Update(
      { info: { digest: info.digest, labels: info.labels ?? {} }, update_mask: { paths: [...(fieldpaths ?? [])] } },
      callOptionsOf(ctx),
    );
    if (!res.info) throw new DataLossError(`no info returned for ${info.digest}`);
    return toContentInfo(res.info);
  }

  async *list(ctx: OpContext, filters?: readonly string[]): AsyncIterable<ContentInfo> {
    for await (const batch of this.client.content.List({ filters: [...(filters ?? [])] }, callOptionsOf(ctx))) {
      for (const info of batch.info) yield toContentInfo(info);
    }
  }

  async delete(ctx: OpContext, digest: string): Promise<void> {
    await this.client.content.Delete({ digest }, callOptionsOf(ctx));
  }

  async reader(ctx: OpContext, digest: string): Promise<ContentReader> {
    const info = await this.info(ctx, digest);
    return new ContentReaderProxy(this.client, ctx, info.digest, info.size);
  }

  async status(ctx: OpContext, ref: string): Promise<IngestStatus> {
    const { status } = await this.client.content.Status({ ref }, callOptionsOf(ctx));
    if (!status) throw new DataLossError(`no status returned for ${ref}`);
    return toIngestStatus(status);
  }

  async listStatuses(ctx: OpContext, filters?: readonly string[]): Promise<IngestStatus[]> {
    const { statuses } = await this.client.content.ListStatuses({ filters: [...(filters ?? [])] }, callOptionsOf(ctx));
    return statuses.map(toIngestStatus);
  }

  async abort(ctx: OpContext, ref: string): Promise<void> {
    await this.client.content.Abort({ ref }, callOptionsOf(ctx));
  }

  writer(ctx: OpContext, options: WriterOptions): Promise<ContentWriter> {
    return ContentWriterProxy.open(this.client, ctx, options);
  }
}

/** Reads one blob with Read calls; holds no server-side state, so close() only stops further use. */
class ContentReaderProxy implements ContentReader {
  private closed = false;

  constructor(
    private readonly client: BerthClient,
    private readonly ctx: OpContext,
    private readonly digest: string,
    readonly size: number,
  ) {}

  async read(offset: number, length: number): Promise<Buffer> {
    this.checkOpen();
    const chunks: Buffer[] = [];
    for await (const chunk of this.stream(offset, length)) chunks.push(chunk);
    return chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks);
  }

  async *stream(offset = 0, length?: number): AsyncIterable<Buffer> {
    this.checkOpen();
    // Size 0 on the wire means "to the end": an empty range must not reach the server.
    if (length !== undefined && length <= 0) return;
    if (offset >= this.size) return;
    const size = length === undefined ? 0 : Math.min(length, this.size - offset);
    for await (const res of this.client.content.Read({ digest: this.digest, offset, size }, callOptionsOf(this.ctx))) {
      if (res.data.length > 0) yield res.data;
    }
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  private checkOpen(): void {
    if (this.closed) throw new FailedPreconditionError(`reader of ${this.digest} is closed`);
  }
}

/**
 * An ingest over one Content.Write call, driven like containerd's remote writer: STAT opens the ref (and holds its
 * lock for as long as the call lasts), WRITE appends at the current offset, COMMIT ends the call. Ending the call
 * without COMMIT leaves the ingest resumable.
 */
class ContentWriterProxy implements ContentWriter {
  private offset: number;
  private currentDigest: string;
  private finished = false;

  private constructor(
    readonly ref: string,
    private readonly expected: string,
    private readonly stream: Lockstep<WriteRequest, WriteResponse>,
    first: WriteResponse,
  ) {
    this.offset = first.offset;
    this.currentDigest = first.digest;
  }

  static async open(client: BerthClient, ctx: OpContext, options: WriterOptions): Promise<ContentWriterProxy> {
    const stream = new Lockstep<WriteRequest, WriteResponse>((requests) => client.content.Write(requests, callOptionsOf(ctx)));
    const expected = options.expected ?? '';
    try {
      const first = await stream.send({ action: 'STAT', ref: options.ref, total: options.total ?? 0, expected });
      return new ContentWriterProxy(options.ref, expected, stream, first);
    } catch (err) {
      await stream.cancel().catch(() => undefined);
      throw err;
    }
  }

  async status(): Promise<IngestStatus> {
    const res = await this.send({ action: 'STAT' });
    this.track(res);
    return toIngestStatus({ ...res, ref: this.ref, expected: this.expected });
  }

  digest(): string {
    return this.currentDigest;
  }

  async write(data: Uint8Array): Promise<void> {
    for (let at = 0; at < data.length; at += PROXY_WRITE_CHUNK_BYTES) {
      const piece = data.subarray(at, at + PROXY_WRITE_CHUNK_BYTES);
      const offset = this.offset;
      const res = await this.send({ action: 'WRITE', offset, data: piece });
      // A writer shared from another namespace stands at the blob's full size and restarts the ingest when written
      // to: the bytes then land at 0. Anything else short of offset + length lost bytes.
      const restarted = offset > 0 && res.offset === piece.length;
      if (res.offset !== offset + piece.length && !restarted) {
        throw new DataLossError(`short write to ${this.ref}: ${res.offset - offset} of ${piece.length} bytes taken`);
      }
      this.track(res);
    }
  }

  /** A WRITE at offset 0 without data: the server restarts an ingest that has bytes (containerd's client does so). */
  async truncate(size: number): Promise<void> {
    if (size !== 0) throw new NotImplementedError(`truncate to ${size}: only 0 is supported`);
    this.track(await this.send({ action: 'WRITE', offset: 0 }));
  }

  async commit(size: number, expected: string, options: CommitOptions = {}): Promise<void> {
    // The current offset, never 0 on a non-empty ingest: a WRITE or COMMIT at offset 0 restarts the ingest.
    const res = await this.send({ action: 'COMMIT', offset: this.offset, total: size, expected, labels: options.labels ?? {} });
    this.track(res);
    this.finished = true;
    await this.stream.close();
    if (expected !== '' && res.digest !== '' && res.digest !== expected) {
      throw new DataLossError(`unexpected commit digest ${res.digest}, expected ${expected}`);
    }
  }

  /** Ends the call without committing (the server releases the ref and keeps the ingest). Idempotent. */
  async close(): Promise<void> {
    if (this.finished) return;
    this.finished = true;
    try {
      await this.stream.close();
    } finally {
      await this.stream.cancel().catch(() => undefined);
    }
  }

  /** One exchange; a failure ends the call (the server has closed its writer), so the writer is finished too. */
  private async send(request: WriteRequest): Promise<WriteResponse> {
    if (this.finished) throw new FailedPreconditionError(`writer for ref ${this.ref} is closed`);
    try {
      return await this.stream.send(request);
    } catch (err) {
      this.finished = true;
      await this.stream.cancel().catch(() => undefined);
      throw err;
    }
  }

  private track(res: WriteResponse): void {
    this.offset = res.offset;
    if (res.digest) this.currentDigest = res.digest;
  }
}
