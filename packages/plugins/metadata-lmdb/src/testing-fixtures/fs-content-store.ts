/**
 * A minimal but real file-backed raw content store for this package's tests (excluded from the build): blobs at
 * `blobs/<alg>/<hex>`, ingests at `ingest/<sha256(ref)>/{ref,data,startedat,total}`, one writer per ref, size and
 * digest verification and commit by rename. It ignores the OpContext namespace, as the raw store does.
 */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readFile, readdir, rename, rm, stat, writeFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import {
  AlreadyExistsError,
  FailedPreconditionError,
  NotFoundError,
  NotImplementedError,
  UnavailableError,
  type CommitOptions,
  type ContentInfo,
  type ContentReader,
  type ContentStore,
  type ContentWriter,
  type IngestStatus,
  type Labels,
  type OpContext,
  type WriterOptions,
} from '@berth/core';

const isErrno = (err: unknown, code: string): boolean => (err as NodeJS.ErrnoException)?.code === code;

export class FsContentStore implements ContentStore {
  private readonly locks = new Set<string>();
  private readonly labels = new Map<string, Labels>();

  constructor(readonly root: string) {}

  private blobPath(digest: string): string {
    const [alg, hex] = digest.split(':');
    if (!alg || !hex || !/^[a-f0-9]+$/.test(hex)) throw new NotFoundError(`content digest ${digest}: not found`);
    return join(this.root, 'blobs', alg, hex);
  }

  private ingestDir(ref: string): string {
    return join(this.root, 'ingest', createHash('sha256').update(ref).digest('hex'));
  }

  async info(_ctx: OpContext, digest: string): Promise<ContentInfo> {
    try {
      const st = await stat(this.blobPath(digest));
      return { digest, size: st.size, createdAt: st.ctime, updatedAt: st.mtime, labels: { ...(this.labels.get(digest) ?? {}) } };
    } catch (err) {
      if (isErrno(err, 'ENOENT')) throw new NotFoundError(`content digest ${digest}: not found`, { cause: err });
      throw err;
    }
  }

  async update(ctx: OpContext, info: Pick<ContentInfo, 'digest'> & Partial<Pick<ContentInfo, 'labels'>>): Promise<ContentInfo> {
    await this.info(ctx, info.digest);
    this.labels.set(info.digest, { ...(info.labels ?? {}) });
    return this.info(ctx, info.digest);
  }

  async *list(ctx: OpContext): AsyncIterable<ContentInfo> {
    let algs: string[] = [];
    try {
      algs = await readdir(join(this.root, 'blobs'));
    } catch (err) {
      if (!isErrno(err, 'ENOENT')) throw err;
    }
    for (const alg of algs) {
      for (const hex of await readdir(join(this.root, 'blobs', alg))) yield this.info(ctx, `${alg}:${hex}`);
    }
  }

  async delete(_ctx: OpContext, digest: string): Promise<void> {
    try {
      await rm(this.blobPath(digest));
      this.labels.delete(digest);
    } catch (err) {
      if (isErrno(err, 'ENOENT')) throw new NotFoundError(`content digest ${digest}: not found`, { cause: err });
      throw err;
    }
  }

  async reader(ctx: OpContext, digest: string): Promise<ContentReader> {
    const { size } = await this.info(ctx, digest);
    const path = this.blobPath(digest);
    const fh = await open(path, 'r');
    return {
      size,
      async read(offset: number, length: number): Promise<Buffer> {
        const buf = Buffer.alloc(Math.max(0, Math.min(length, size - offset)));
        const { bytesRead } = await fh.read(buf, 0, buf.length, offset);
        return buf.subarray(0, bytesRead);
      },
      async *stream(offset = 0, length?: number): AsyncIterable<Buffer> {
        const end = length === undefined ? size : Math.min(size, offset + length);
        if (end <= offset) return;
        for await (const chunk of createReadStream(path, { start: offset, end: end - 1 })) yield chunk as Buffer;
      },
      close: () => fh.close(),
    };
  }

  async status(_ctx: OpContext, ref: string): Promise<IngestStatus> {
    const dir = this.ingestDir(ref);
    try {
      const [data, startedAt, total] = await Promise.all([
        stat(join(dir, 'data')),
        readFile(join(dir, 'startedat'), 'utf8'),
        readFile(join(dir, 'total'), 'utf8').catch(() => '0'),
      ]);
      const started = new Date(startedAt);
      // File times come from the kernel's coarse clock and can trail Date.now() by a few ms.
      const updated = new Date(Math.max(started.getTime(), data.mtime.getTime()));
      return { ref, offset: data.size, total: Number(total), expected: '', startedAt: started, updatedAt: updated };
    } catch (err) {
      if (isErrno(err, 'ENOENT')) throw new NotFoundError(`reference ${ref}: not found`, { cause: err });
      throw err;
    }
  }

  async listStatuses(ctx: OpContext): Promise<IngestStatus[]> {
    let dirs: string[] = [];
    try {
      dirs = await readdir(join(this.root, 'ingest'));
    } catch (err) {
      if (!isErrno(err, 'ENOENT')) throw err;
    }
    const out: IngestStatus[] = [];
    for (const d of dirs) {
      try {
        const ref = await readFile(join(this.root, 'ingest', d, 'ref'), 'utf8');
        out.push(await this.status(ctx, ref));
      } catch (err) {
        if (!isErrno(err, 'ENOENT') && (err as { errdef?: string }).errdef !== 'not-found') throw err;
      }
    }
    return out;
  }

  async abort(_ctx: OpContext, ref: string): Promise<void> {
    const dir = this.ingestDir(ref);
    try {
      await stat(dir);
    } catch (err) {
      if (isErrno(err, 'ENOENT')) throw new NotFoundError(`reference ${ref}: not found`, { cause: err });
      throw err;
    }
    await rm(dir, { recursive: true, force: true });
  }

  async writer(_ctx: OpContext, options: WriterOptions): Promise<ContentWriter> {
    const { ref } = options;
    if (options.expected) {
      try {
        await stat(this.blobPath(options.expected));
        throw new AlreadyExistsError(`content ${options.expected}: already exists`);
      } catch (err) {
        if (!isErrno(err, 'ENOENT') && (err as { errdef?: string }).errdef !== 'not-found') throw err;
      }
    }
    if (this.locks.has(ref)) throw new UnavailableError(`ref ${ref} locked`);
    this.locks.add(ref);
    try {
      const dir = this.ingestDir(ref);
      await mkdir(dir, { recursive: true });
      const hash = createHash('sha256');
      let offset = 0;
      try {
        const existing = await readFile(join(dir, 'data'));
        hash.update(existing);
        offset = existing.length;
      } catch (err) {
        if (!isErrno(err, 'ENOENT')) throw err;
        await writeFile(join(dir, 'ref'), ref);
        await writeFile(join(dir, 'startedat'), new Date().toISOString());
        await writeFile(join(dir, 'data'), '');
      }
      if (options.total) await writeFile(join(dir, 'total'), String(options.total));
      const fh = await open(join(dir, 'data'), 'r+');
      return new FsWriter(this, ref, dir, fh, hash, offset, options.total ?? 0, options.expected ?? '');
    } catch (err) {
      this.locks.delete(ref);
      throw err;
    }
  }

  /** @internal */
  unlock(ref: string): void {
    this.locks.delete(ref);
  }

  /** @internal */
  async install(dir: string, digest: string, labels: Labels | undefined): Promise<void> {
    const path = this.blobPath(digest);
    await mkdir(join(path, '..'), { recursive: true });
    try {
      await stat(path);
      await rm(dir, { recursive: true, force: true });
      throw new AlreadyExistsError(`content ${digest}: already exists`);
    } catch (err) {
      if (!isErrno(err, 'ENOENT')) throw err;
    }
    await rename(join(dir, 'data'), path);
    await rm(dir, { recursive: true, force: true });
    if (labels) this.labels.set(digest, { ...labels });
  }
}

class FsWriter implements ContentWriter {
  private closed = false;

  constructor(
    private readonly store: FsContentStore,
    readonly ref: string,
    private readonly dir: string,
    private readonly fh: FileHandle,
    private hash: Hash,
    private offset: number,
    private readonly total: number,
    private readonly expected: string,
  ) {}

  async status(): Promise<IngestStatus> {
    const s = await this.store.status({ namespace: '' }, this.ref);
    return { ...s, expected: this.expected };
  }

  digest(): string {
    return `sha256:${this.hash.copy().digest('hex')}`;
  }

  async write(data: Uint8Array): Promise<void> {
    if (this.closed) throw new FailedPreconditionError(`writer for ref ${this.ref} is closed`);
    await this.fh.write(data, 0, data.length, this.offset);
    this.hash.update(data);
    this.offset += data.length;
  }

  async truncate(size: number): Promise<void> {
    if (size !== 0) throw new NotImplementedError(`truncate to ${size}: only 0 is supported`);
    await this.fh.truncate(0);
    this.hash = createHash('sha256');
    this.offset = 0;
  }

  async commit(size: number, expected: string, options?: CommitOptions): Promise<void> {
    await this.fh.sync();
    const want = size || this.total;
    if (want && want !== this.offset) throw new FailedPreconditionError(`unexpected commit size ${this.offset}, expected ${want}`);
    const digest = this.digest();
    const wantDigest = expected || this.expected;
    if (wantDigest && wantDigest !== digest) throw new FailedPreconditionError(`unexpected commit digest ${digest}, expected ${wantDigest}`);
    await this.close();
    await this.store.install(this.dir, digest, options?.labels);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.fh.close();
    this.store.unlock(this.ref);
  }
}
