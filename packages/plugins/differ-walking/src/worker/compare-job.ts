// Diff inside a worker: the changes from lower to upper become an OCI layer tar (as containerd's ChangeWriter writes
// it: parents of a change included, deletions as `.wh.<name>` files, hard links within the layer kept as links),
// gzipped by zlib here when asked, and streamed to the main thread, which writes it to the content store. The main
// thread acknowledges what it has written, and the walk waits when the window is full.
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { closeSync, lstatSync, openSync, readSync, readlinkSync, type BigIntStats } from 'node:fs';
import { PassThrough, type Transform } from 'node:stream';
import { createGzip } from 'node:zlib';
import { splitDev } from '@berth/sys';
import { LayerError } from '../apply/errors.js';
import { changes, readXattrs } from '../compare/changes.js';
import { TarType } from '../tar/header.js';
import { endOfArchive, entryHeader, padding, type WriteEntry } from '../tar/writer.js';
import type { CompareJob, CompareResult, FromWorker, ToWorker } from './protocol.js';
import { serializeError } from './protocol.js';

/** Chunks the main thread may hold unacknowledged. */
const WINDOW = 8;
const READ_CHUNK = 1 << 20;

export async function runCompare(job: CompareJob): Promise<void> {
  const port = job.port;
  const send = (m: FromWorker, transfer?: ArrayBuffer[]) => port.postMessage(m, transfer);
  const out: Transform = job.gzipLevel === undefined ? new PassThrough() : createGzip({ level: job.gzipLevel, chunkSize: 256 * 1024 });
  const hash = createHash('sha256');
  let size = 0;
  let entries = 0;
  let cancelled = false;
  let inflight = 0;

  out.on('data', (chunk: Buffer) => {
    // A copy the worker can give away (zlib hands out slices of its own reused buffer).
    const copy = new Uint8Array(chunk);
    send({ data: copy }, [copy.buffer]);
    if (++inflight >= WINDOW) out.pause();
  });
  port.on('message', (m: ToWorker) => {
    if ('ack' in m) {
      inflight--;
      if (inflight < WINDOW && out.isPaused()) out.resume();
    } else if ('cancel' in m) {
      cancelled = true;
      out.resume();
    }
  });
  const ended = once(out, 'end');
  ended.catch(() => undefined); // awaited on success; a failure is reported from the walk

  const write = async (buf: Buffer) => {
    if (cancelled) throw new LayerError('cancelled', 'diff cancelled');
    hash.update(buf);
    size += buf.length;
    if (!out.write(buf)) await once(out, 'drain');
  };

  try {
    const emitted = new Set<string>();
    const links = new Map<string, string>();
    const emitEntry = async (rel: string, st: BigIntStats) => {
      const path = `${job.upper}/${rel}`;
      const entry = toEntry(rel, st, path, links);
      if (!entry) return;
      entries++;
      await write(entryHeader(entry));
      if (entry.type === TarType.File && entry.size > 0) await copyFile(path, entry.size, write, rel);
      if (st.isDirectory()) emitted.add(rel);
    };
    // containerd's includeParents: every directory above a change is in the layer, with the upper tree's metadata.
    const parents = async (rel: string) => {
      const parts = rel.split('/');
      for (let n = 1; n < parts.length; n++) {
        const dir = parts.slice(0, n).join('/');
        if (emitted.has(dir)) continue;
        await emitEntry(dir, lstatSync(`${job.upper}/${dir}`, { bigint: true }));
      }
    };
    for (const change of changes(job.lower, job.upper)) {
      await parents(change.rel);
      if (change.kind === 'delete') {
        const slash = change.rel.lastIndexOf('/');
        const name = slash < 0 ? `.wh.${change.rel}` : `${change.rel.slice(0, slash)}/.wh.${change.rel.slice(slash + 1)}`;
        entries++;
        await write(entryHeader({ name, type: TarType.File, mode: 0, uid: 0, gid: 0, size: 0, mtime: job.whiteoutTime }));
      } else {
        await emitEntry(change.rel, change.stat!);
      }
    }
    await write(endOfArchive());
    out.end();
    await ended;
    const result: CompareResult = { tarDigest: `sha256:${hash.digest('hex')}`, tarSize: size, entries };
    send({ done: result });
  } catch (err) {
    out.destroy();
    send({ error: serializeError(err) });
  } finally {
    port.removeAllListeners('message');
  }
}

function toEntry(rel: string, st: BigIntStats, path: string, links: Map<string, string>): WriteEntry | undefined {
  const base = {
    mode: Number(st.mode & 0o7777n),
    uid: Number(st.uid),
    gid: Number(st.gid),
    mtime: Number(st.mtimeNs / 1_000_000_000n),
    xattrs: readXattrs(path),
  };
  if (st.isDirectory()) return { ...base, name: `${rel}/`, type: TarType.Dir, size: 0 };
  if (st.isSymbolicLink()) return { ...base, name: rel, type: TarType.Symlink, size: 0, linkname: readlinkSync(path) };
  if (st.isFIFO()) return { ...base, name: rel, type: TarType.Fifo, size: 0 };
  if (st.isCharacterDevice() || st.isBlockDevice()) {
    const { major, minor } = splitDev(st.rdev);
    return { ...base, name: rel, type: st.isCharacterDevice() ? TarType.Char : TarType.Block, size: 0, devmajor: major, devminor: minor };
  }
  if (st.isFile()) {
    if (st.nlink > 1n) {
      const key = `${st.dev}:${st.ino}`;
      const first = links.get(key);
      if (first !== undefined) return { ...base, name: rel, type: TarType.Link, size: 0, linkname: first };
      links.set(key, rel);
    }
    return { ...base, name: rel, type: TarType.File, size: Number(st.size) };
  }
  return undefined; // sockets are not carried in layers
}

async function copyFile(path: string, size: number, write: (b: Buffer) => Promise<void>, rel: string): Promise<void> {
  const fd = openSync(path, 'r');
  try {
    let done = 0;
    while (done < size) {
      const buf = Buffer.allocUnsafe(Math.min(READ_CHUNK, size - done));
      const n = readSync(fd, buf, 0, buf.length, done);
      if (n === 0) throw new LayerError('failed-precondition', `${rel} shrank while the diff was read (${done} of ${size} bytes)`);
      await write(n === buf.length ? buf : buf.subarray(0, n));
      done += n;
    }
    const pad = padding(size);
    if (pad > 0) await write(Buffer.alloc(pad));
  } finally {
    closeSync(fd);
  }
}
