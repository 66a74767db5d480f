import { FailedPreconditionError, InvalidArgumentError, OutOfRangeError, type ContentReader } from '@berth/core';
import type { BlobHandle } from './open-blobs.js';

/** Size of the chunks `stream` yields (containerd's 1 MiB copy buffer). */
export const READ_CHUNK_SIZE = 1 << 20;

/** Random access to one committed blob through a (possibly shared) read-only handle. */
export class LocalContentReader implements ContentReader {
  private closed = false;
  readonly size: number;

  constructor(
    private readonly handle: BlobHandle,
    readonly digest: string,
  ) {
    this.size = handle.size;
  }

  private get fh() {
    return this.handle.fh;
  }

  async read(offset: number, length: number): Promise<Buffer> {
    this.checkRange(offset, length);
    return this.handle.read(offset, Math.min(length, this.size - offset));
  }

  async *stream(offset = 0, length?: number): AsyncIterable<Buffer> {
    this.checkRange(offset, length ?? 0);
    const end = length === undefined ? this.size : Math.min(this.size, offset + length);
    let position = offset;
    while (position < end) {
      if (this.closed) throw new FailedPreconditionError(`reader of ${this.digest} is closed`);
      const want = Math.min(READ_CHUNK_SIZE, end - position);
      // A fresh buffer per chunk: consumers may keep what they were given.
      const buf = Buffer.allocUnsafe(want);
      const { bytesRead } = await this.fh.read(buf, 0, want, position);
      if (bytesRead === 0) break;
      position += bytesRead;
      yield bytesRead === want ? buf : buf.subarray(0, bytesRead);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.handle.release();
  }

  private checkRange(offset: number, length: number): void {
    if (this.closed) throw new FailedPreconditionError(`reader of ${this.digest} is closed`);
    if (!Number.isSafeInteger(offset) || offset < 0) throw new InvalidArgumentError(`invalid read offset ${offset}`);
    if (!Number.isSafeInteger(length) || length < 0) throw new InvalidArgumentError(`invalid read length ${length}`);
    if (offset > this.size) {
      throw new OutOfRangeError(`read offset ${offset} past the end of ${this.digest} (size ${this.size})`);
    }
  }
}
