import { open, type FileHandle } from 'node:fs/promises';
import { NotFoundError } from '@berth/core';
import { hasErrno } from '@berth/core';

/** How long an unused blob handle stays open for the next reader of the same blob. */
export const IDLE_HANDLE_TTL_MS = 1000;
/**
 * A cached handle is not handed to new readers once this old, so that a blob removed behind the store's back (not
 * through delete) is noticed soon even while it is read continuously.
 */
export const MAX_HANDLE_AGE_MS = 5000;
/** At most this many unused handles are kept open. */
export const MAX_IDLE_HANDLES = 16;
/** Bytes read ahead for sequential small reads (and kept per open handle). */
export const READ_AHEAD_BYTES = 512 << 10;

/** A read-only handle on a committed blob, shared by its readers. */
export interface BlobHandle {
  readonly fh: FileHandle;
  readonly size: number;
  /**
   * Reads `length` bytes at `offset` (both within the blob; fewer only at its end). The result may be a view of a
   * buffer shared with other readers of the blob: it must not be modified.
   */
  read(offset: number, length: number): Promise<Buffer>;
  /** Gives the handle back; the last release of a handle that is no longer cached closes it. */
  release(): Promise<void>;
}

interface Entry {
  readonly fh: FileHandle;
  readonly size: number;
  refs: number;
  readonly openedAt: number;
  /** Where the last read ended: a read starting there is sequential. */
  next: number;
  /** The last read-ahead: bytes from `start`. Never modified once filled (readers may hold views of it). */
  window?: { readonly start: number; readonly data: Buffer };
  /** Still reachable through the cache (false once forgotten, evicted or expired). */
  cached: boolean;
  timer?: NodeJS.Timeout;
}

/**
 * Open handles of committed blobs, shared between readers and kept a moment after the last one closes.
 *
 * Clients such as `ctr content get` read a blob through one Read call per 32 KiB (Go's io.Copy buffer), so the
 * open, fstat and close per call cost more than the read itself. Blobs never change once committed, so a handle
 * and the size taken from it stay valid for as long as the file exists: `forget` (on delete) drops a digest's
 * handle so that later readers see NotFound, while readers holding it keep reading the unlinked file, as with a
 * handle of their own.
 */
export class OpenBlobs {
  private readonly idleTtlMs: number;
  private readonly maxAgeMs: number;
  private readonly entries = new Map<string, Entry>();
  /** Opens in flight, so that concurrent first readers of one blob share one open. */
  private readonly opening = new Map<string, Promise<Entry>>();
  private closed = false;

  constructor(options: { idleTtlMs?: number; maxAgeMs?: number } = {}) {
    this.idleTtlMs = options.idleTtlMs ?? IDLE_HANDLE_TTL_MS;
    this.maxAgeMs = options.maxAgeMs ?? MAX_HANDLE_AGE_MS;
  }

  async acquire(digest: string, path: string): Promise<BlobHandle> {
    let entry = this.entries.get(digest);
    if (entry && performance.now() - entry.openedAt > this.maxAgeMs) {
      this.uncache(digest, entry);
      entry = undefined;
    }
    if (!entry) {
      const pending = this.opening.get(digest);
      if (!pending) {
        const mine = openEntry(path, digest);
        this.opening.set(digest, mine);
        let current = false;
        let opened: Entry;
        try {
          opened = await mine;
        } finally {
          // Still ours unless forget (the blob was deleted) or close dropped it meanwhile.
          current = this.opening.get(digest) === mine;
          if (current) this.opening.delete(digest);
        }
        if (current && !this.closed) {
          opened.cached = true;
          this.entries.set(digest, opened);
        }
        entry = opened;
      } else {
        entry = await pending;
      }
    }
    if (entry.timer) {
      clearTimeout(entry.timer);
      entry.timer = undefined;
    }
    entry.refs++;
    return this.handleOf(digest, entry);
  }

  /** The blob is gone (deleted): no later reader gets the old handle. Current holders keep it until they release. */
  forget(digest: string): void {
    this.opening.delete(digest);
    const entry = this.entries.get(digest);
    if (entry) this.uncache(digest, entry);
  }

  /** Closes every idle handle and stops caching; handles still held close on their release. */
  async close(): Promise<void> {
    this.closed = true;
    this.opening.clear();
    const idle: Entry[] = [];
    for (const entry of this.entries.values()) {
      entry.cached = false;
      if (entry.refs === 0) idle.push(entry);
    }
    this.entries.clear();
    await Promise.all(idle.map((entry) => this.dispose(entry)));
  }

  private handleOf(digest: string, entry: Entry): BlobHandle {
    let released = false;
    return {
      fh: entry.fh,
      size: entry.size,
      read: (offset, length) => readThrough(entry, offset, length),
      release: async () => {
        if (released) return;
        released = true;
        entry.refs--;
        if (entry.refs > 0) return;
        if (!entry.cached) return this.dispose(entry);
        entry.timer = setTimeout(() => this.expire(digest, entry), this.idleTtlMs);
        entry.timer.unref();
        this.trimIdle();
      },
    };
  }

  private expire(digest: string, entry: Entry): void {
    entry.timer = undefined;
    if (entry.refs > 0 || this.entries.get(digest) !== entry) return;
    this.uncache(digest, entry);
  }

  /** Takes an entry out of the cache; it closes now if idle, else on its last release. */
  private uncache(digest: string, entry: Entry): void {
    this.entries.delete(digest);
    entry.cached = false;
    if (entry.refs === 0) void this.dispose(entry);
  }

  /** Keeps the number of idle handles bounded, closing the least recently cached ones first. */
  private trimIdle(): void {
    let idle = 0;
    for (const entry of this.entries.values()) if (entry.refs === 0) idle++;
    for (const [digest, entry] of this.entries) {
      if (idle <= MAX_IDLE_HANDLES) return;
      if (entry.refs > 0) continue;
      this.uncache(digest, entry);
      idle--;
    }
  }

  private async dispose(entry: Entry): Promise<void> {
    if (entry.timer) clearTimeout(entry.timer);
    entry.timer = undefined;
    entry.window = undefined;
    // Nothing waits for an idle handle's close; a failure to close a read-only file loses nothing.
    await entry.fh.close().catch(() => undefined);
  }
}

async function openEntry(path: string, digest: string): Promise<Entry> {
  let fh: FileHandle;
  try {
    fh = await open(path, 'r');
  } catch (err) {
    if (hasErrno(err, 'ENOENT')) throw new NotFoundError(`content digest ${digest}: not found`, { cause: err });
    throw err;
  }
  try {
    const st = await fh.stat();
    return { fh, size: st.size, refs: 0, openedAt: performance.now(), next: 0, cached: false };
  } catch (err) {
    await fh.close();
    throw err;
  }
}

/**
 * Serves small sequential reads from a read-ahead window: `ctr content get` asks for 32 KiB per call, and a
 * thread-pool round trip plus a fresh buffer for each would cost more than the bytes. Other reads go to the file.
 */
async function readThrough(entry: Entry, offset: number, length: number): Promise<Buffer> {
  if (length === 0) return Buffer.alloc(0);
  const end = offset + length;
  const window = entry.window;
  if (window && offset >= window.start && end <= window.start + window.data.length) {
    entry.next = end;
    return window.data.subarray(offset - window.start, end - window.start);
  }
  const sequential = offset === entry.next && length < READ_AHEAD_BYTES;
  entry.next = end;
  if (!sequential) return readFully(entry.fh, offset, length);
  const data = await readFully(entry.fh, offset, Math.min(READ_AHEAD_BYTES, entry.size - offset));
  entry.window = { start: offset, data };
  return data.length > length ? data.subarray(0, length) : data;
}

/** `length` bytes at `offset`, fewer only at the end of the file. */
async function readFully(fh: FileHandle, offset: number, length: number): Promise<Buffer> {
  const buf = Buffer.allocUnsafe(length);
  let filled = 0;
  while (filled < length) {
    const { bytesRead } = await fh.read(buf, filled, length - filled, offset + filled);
    if (bytesRead === 0) break;
    filled += bytesRead;
  }
  return filled === length ? buf : buf.subarray(0, filled);
}
