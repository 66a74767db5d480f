// Writing a stream into berthd's content store over Content.Write (as ctr's content.WriteBlob does), and the
// progress line that the commands writing blobs show on a TTY.
import type { containerd } from '@berth/api';
import { Lockstep, type BerthClient } from '@berth/client';
import { DataLossError, InvalidArgumentError, isAlreadyExists } from '@berth/core';
import type { CliContext } from './context.js';

type WriteRequest = containerd.services.content.v1.WriteContentRequestInput;
type WriteResponse = containerd.services.content.v1.WriteContentResponse;

/** Bytes per WRITE message (ctr copies with a 1 MiB buffer). */
export const WRITE_CHUNK_BYTES = 1 << 20;


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

export interface IngestOptions {
  readonly expectedSize?: number;
  readonly expectedDigest?: string;
  readonly onProgress?: (offset: number, total: number) => void;
  /**
   * Abort the ingest when its commit fails (wrong size or digest), so that the next try starts from zero instead of
   * resuming bytes that can never verify. Off by default: `berth content ingest` keeps the ingest, as ctr does.
   */
  readonly discardOnCommitFailure?: boolean;
}

export interface IngestResult {
  readonly digest: string;
  readonly size: number;
  /** True when the store already had the blob (ctr treats that as success). */
  readonly existed: boolean;
}

/** Input of an ingest: a stream from the start (bytes before a resume offset are skipped), or a stream opened at it. */
export type IngestSource = AsyncIterable<Uint8Array | string> | ((offset: number) => AsyncIterable<Uint8Array | string>);

/**
 * Writes a blob under `ref` the way ctr's content.WriteBlob does over Content.Write: STAT with ref/total/expected,
 * STAT for the resume offset (skipping that many input bytes, or opening the source there), WRITE chunks, then
 * COMMIT. A function source is not called at all when the store already has the blob.
 */
export async function ingest(client: BerthClient, ref: string, source: IngestSource, options: IngestOptions = {}): Promise<IngestResult> {
  const total = options.expectedSize ?? 0;
  const expected = options.expectedDigest ?? '';
  const existing = (): IngestResult => ({ digest: expected, size: total, existed: true });
  const stream = new Lockstep<WriteRequest, WriteResponse>((requests) => client.content.Write(requests));
  let discard = false;
  try {
    try {
      await stream.send({ action: 'STAT', ref, total, expected });
    } catch (err) {
      if (isAlreadyExists(err)) return existing();
      throw err;
    }
    const status = await stream.send({ action: 'STAT' });
    let offset = status.offset;
    let digest = status.digest;
    options.onProgress?.(offset, status.total || total);
    const input = typeof source === 'function' ? rechunk(source(offset), WRITE_CHUNK_BYTES) : rechunk(source, WRITE_CHUNK_BYTES, offset);
    for await (const data of input) {
      const res = await stream.send({ action: 'WRITE', offset, data });
      if (res.offset !== offset + data.length) {
        throw new DataLossError(`short write to ${ref}: ${res.offset - offset} of ${data.length} bytes taken`);
      }
      offset = res.offset;
      digest = res.digest || digest;
      options.onProgress?.(offset, res.total || total);
    }
    let committed: WriteResponse;
    try {
      committed = await stream.send({ action: 'COMMIT', offset, total, expected });
    } catch (err) {
      if (isAlreadyExists(err)) return { digest: expected || digest, size: offset, existed: true };
      discard = options.discardOnCommitFailure === true;
      throw err;
    }
    if (total !== 0 && committed.offset !== total) throw new DataLossError(`unexpected size: ${committed.offset} != ${total}`);
    if (expected !== '' && committed.digest !== expected) throw new DataLossError(`unexpected digest: ${committed.digest} != ${expected}`);
    await stream.close();
    return { digest: committed.digest || digest, size: committed.offset, existed: false };
  } finally {
    await stream.cancel().catch(() => {});
    // after the call has ended, so the ref is no longer locked by it
    if (discard) await client.content.Abort({ ref }).catch(() => {});
  }
}

/** A `\r`-rewritten progress line on a TTY, at most every 100 ms; `render` makes its text. done() ends the line once. */
export function progressLine<A extends unknown[]>(ctx: CliContext, render: (...args: A) => string): { update(...args: A): void; done(): void } {
  let last = 0;
  let text = '';
  const draw = () => ctx.io.stderr.write(`\r\x1b[K${text}`);
  return {
    update(...args) {
      text = render(...args);
      const now = Date.now();
      if (now - last >= 100) {
        last = now;
        draw();
      }
    },
    done() {
      if (text) {
        draw();
        ctx.io.stderr.write('\n');
        text = '';
      }
    },
  };
}

