import { open, type FileHandle } from 'node:fs/promises';
import { FailedPreconditionError, InvalidArgumentError, NotFoundError, OutOfRangeError, type ContentReader } from '@berth/core';
import { hasErrno } from './fs-util.js';

/** Size of the chunks `stream` yields (containerd's 1 MiB copy buffer). */
export const READ_CHUNK_SIZE = 1 << 20;

/** Random access to one committed blob through one open file handle. */
export class LocalContentReader implements ContentReader {
  private closed = false;

  private constructor(
    private readonly fh: FileHandle,
    readonly size: number,
    readonly digest: string,
  ) {}

  static async open(path: string, digest: string): Promise<LocalContentReader> {
    let fh: FileHandle;
    try {
      fh = await open(path, 'r');
    } catch (err) {
      if (hasErrno(err, 'ENOENT')) throw new NotFoundError(`content digest ${digest}: not found`, { cause: err });
      throw err;
    }
    try {
      const st = await fh.stat();
      return new LocalContentReader(fh, st.size, digest);
    } catch (err) {
      await fh.close();
      throw err;
    }
  }

  async read(offset: number, length: number): Promise<Buffer> {
    this.checkRange(offset, length);
    const n = Math.min(length, this.size - offset);
    const buf = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const { bytesRead } = await this.fh.read(buf, filled, n - filled, offset + filled);
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
    return filled === n ? buf : buf.subarray(0, filled);
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
    await this.fh.close();
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
