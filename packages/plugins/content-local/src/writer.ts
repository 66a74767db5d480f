import type { Hash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import {
  DataLossError,
  digestHex,
  digestSoFar,
  FailedPreconditionError,
  hasErrno,
  InvalidArgumentError,
  NotImplementedError,
  newDigester,
  writeFileAtomic,
  fromSystemError,
  type CommitOptions,
  type ContentWriter,
  type IngestStatus,
  type Labels,
} from '@berth/core';
import { formatTimestamp } from './fs-util.js';
import { Mutex } from './mutex.js';

/** An ingest opened (created or resumed) by the store, with its ref lock held. */
export interface OpenIngest {
  readonly ref: string;
  /** `ingest/<sha256hex(ref)>`. */
  readonly dir: string;
  /** The data file, opened for writing. */
  readonly fh: FileHandle;
  /** Bytes already in the data file. */
  readonly offset: number;
  /** The running hash of those bytes. */
  readonly hash: Hash;
  readonly total: number;
  readonly expected: string;
  readonly startedAt: Date;
  readonly updatedAt: Date;
}

/** What a writer needs from its store: publishing a verified ingest and giving the ref lock back. */
export interface IngestHost {
  /** Moves the verified data file into blobs/ (AlreadyExistsError when present; the ingest is removed either way). */
  publish(ingest: { ref: string; dir: string; digest: string; labels?: Labels }): Promise<void>;
  /** Releases the ref lock and forgets the writer. */
  release(writer: LocalContentWriter): void;
}

/**
 * One open ingest. Bytes go straight to the data file at the current offset (positional writes, nothing buffered)
 * while a running sha256 follows them. Operations on one writer run one after another.
 */
export class LocalContentWriter implements ContentWriter {
  readonly ref: string;
  private fh: FileHandle | undefined;
  private offset: number;
  private hash: Hash;
  private readonly total: number;
  private readonly expected: string;
  private readonly startedAt: Date;
  private updatedAt: Date;
  private readonly dir: string;
  private readonly ops = new Mutex();

  constructor(
    private readonly host: IngestHost,
    ingest: OpenIngest,
  ) {
    this.ref = ingest.ref;
    this.dir = ingest.dir;
    this.fh = ingest.fh;
    this.offset = ingest.offset;
    this.hash = ingest.hash;
    this.total = ingest.total;
    this.expected = ingest.expected;
    this.startedAt = ingest.startedAt;
    this.updatedAt = ingest.updatedAt;
  }

  get closed(): boolean {
    return this.fh === undefined;
  }

  async status(): Promise<IngestStatus> {
    return {
      ref: this.ref,
      offset: this.offset,
      total: this.total,
      expected: this.expected,
      startedAt: this.startedAt,
      updatedAt: this.updatedAt,
    };
  }

  digest(): string {
    return digestSoFar(this.hash);
  }

  write(data: Uint8Array): Promise<void> {
    return this.ops.run(async () => {
      const fh = this.handle();
      const length = data.byteLength;
      if (length === 0) {
        this.updatedAt = new Date();
        return;
      }
      // Hash on this thread while the thread pool writes (both only read `data`). The digest must cover exactly
      // what reached the file, so after a short or failed write it is rebuilt from the state before this call.
      const before = this.hash.copy();
      const first = fh.write(data, 0, length, this.offset);
      this.hash.update(data);
      let done = 0;
      try {
        done = (await first).bytesWritten;
        while (done < length) {
          const { bytesWritten } = await fh.write(data, done, length - done, this.offset + done);
          done += bytesWritten;
        }
      } catch (err) {
        // A full disk: what did reach the file stays (the ingest resumes from there), the caller learns why.
        throw fromSystemError(err, 'write', join(this.dir, 'data'));
      } finally {
        if (done < length) this.hash = before.update(data.subarray(0, done));
        this.offset += done;
        this.updatedAt = new Date();
      }
    });
  }

  truncate(size: number): Promise<void> {
    return this.ops.run(async () => {
      const fh = this.handle();
      if (size !== 0) throw new NotImplementedError(`truncate to ${size}: only 0 is supported`);
      await fh.truncate(0);
      this.offset = 0;
      this.hash = newDigester();
      this.updatedAt = new Date();
    });
  }

  commit(size: number, expected: string, options: CommitOptions = {}): Promise<void> {
    return this.ops.run(async () => {
      const fh = this.handle();
      if (!Number.isSafeInteger(size) || size < 0) throw new InvalidArgumentError(`invalid commit size ${size}`);
      if (expected) digestHex(expected);
      // From here on the writer is spent, whatever happens: containerd's writer is closed by Commit too.
      this.fh = undefined;
      try {
        await fh.sync();
        const onDisk = (await fh.stat()).size;
        await fh.close();
        if (onDisk !== this.offset) {
          throw new DataLossError(`ingest ${this.ref}: data file holds ${onDisk} bytes, ${this.offset} were written`);
        }
        // The size and digest given when the ingest started count when commit does not repeat them.
        const wantSize = size > 0 ? size : this.total;
        if (wantSize > 0 && wantSize !== onDisk) {
          throw new FailedPreconditionError(`unexpected commit size ${onDisk}, expected ${wantSize}`);
        }
        const digest = this.digest();
        const wantDigest = expected || this.expected;
        if (wantDigest && wantDigest !== digest) {
          throw new FailedPreconditionError(`unexpected commit digest ${digest}, expected ${wantDigest}`);
        }
        await this.host.publish({ ref: this.ref, dir: this.dir, digest, labels: options.labels });
      } finally {
        await fh.close().catch(() => undefined);
        this.host.release(this);
      }
    });
  }

  close(): Promise<void> {
    return this.ops.run(async () => {
      const fh = this.fh;
      if (!fh) return;
      this.fh = undefined;
      try {
        await fh.sync();
        await fh.close();
        await writeFileAtomic(join(this.dir, 'updatedat'), formatTimestamp(this.updatedAt)).catch((err: unknown) => {
          // Aborted while open: the ingest directory is gone and there is nothing left to record.
          if (!hasErrno(err, 'ENOENT')) throw err;
        });
      } finally {
        await fh.close().catch(() => undefined);
        this.host.release(this);
      }
    });
  }

  private handle(): FileHandle {
    if (!this.fh) throw new FailedPreconditionError(`writer for ref ${this.ref} is closed`);
    return this.fh;
  }
}
