// A process's stdio FIFOs, client-side, as containerd's cio makes them (NewFIFOSetInDir): a private directory
// under the FIFO root (0700) holding `<id>-stdin`, `<id>-stdout` and `<id>-stderr`; no stderr with a terminal (the
// pty carries both streams). The paths go to Tasks.Create/Exec; the shim opens the other ends.
import { closeSync, constants, open as openCallback } from 'node:fs';
import { lstat, mkdir, mkdtemp, readdir, rm, rmdir, unlink } from 'node:fs/promises';
import { Socket } from 'node:net';
import { promisify } from 'node:util';
import { dirname, join } from 'node:path';
import { mkfifo } from '@berth/sys';
import { InvalidArgumentError } from '@berth/core';

const openFd = promisify(openCallback) as (path: string, flags: number) => Promise<number>;

/** Where berth's clients put FIFO directories (containerd's is /run/containerd/fifo). */
export const DEFAULT_FIFO_ROOT = '/run/berth/fifo';

export interface FifoSetOptions {
  /** A terminal: no stderr FIFO. */
  readonly terminal?: boolean;
  /** Make a stdin FIFO (ctr always does; `false` gives the process /dev/null). Default true. */
  readonly stdin?: boolean;
}

/** The FIFO paths of one process ('' for a stream it has none of) and the directory that holds them. */
export interface FifoSet {
  readonly dir: string;
  readonly stdin: string;
  readonly stdout: string;
  readonly stderr: string;
  readonly terminal: boolean;
  /** Removes the FIFOs and their directory (containerd's FIFOSet.Close). Idempotent. */
  close(): Promise<void>;
}

/** containerd's NewFIFOSetInDir: a fresh private directory under `root` with the FIFOs of process `id`. */
export async function createFifoSet(root: string, id: string, options: FifoSetOptions = {}): Promise<FifoSet> {
  if (id === '' || id.includes('/') || id === '.' || id === '..') throw new InvalidArgumentError(`invalid process id ${JSON.stringify(id)} for a FIFO name`);
  await mkdir(root, { recursive: true, mode: 0o700 });
  const dir = await mkdtemp(join(root, `${id}-`));
  const terminal = options.terminal ?? false;
  const paths = {
    stdin: options.stdin === false ? '' : join(dir, `${id}-stdin`),
    stdout: join(dir, `${id}-stdout`),
    stderr: terminal ? '' : join(dir, `${id}-stderr`),
  };
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await rm(dir, { recursive: true, force: true });
  };
  try {
    for (const p of [paths.stdin, paths.stdout, paths.stderr]) if (p !== '') await mkfifo(p, 0o700);
  } catch (err) {
    await close();
    throw err;
  }
  return { dir, ...paths, terminal, close };
}

async function isFifo(path: string): Promise<boolean> {
  try {
    return (await lstat(path)).isFIFO();
  } catch {
    return false;
  }
}

/**
 * What containerd's client does when it deletes a task it did not start (loadFifos' closer): each path that is a
 * FIFO is removed, then each of their directories if it is empty. Files that are not FIFOs are never touched.
 */
export async function removeFifos(paths: readonly string[]): Promise<void> {
  const dirs = new Set<string>();
  for (const p of paths) {
    if (p === '' || !(await isFifo(p))) continue;
    await unlink(p).catch(() => undefined);
    dirs.add(dirname(p));
  }
  for (const d of dirs) {
    if ((await readdir(d).catch(() => ['?'])).length === 0) await rmdir(d).catch(() => undefined);
  }
}

/**
 * Opens a FIFO for reading the way containerd's fifo package does for O_RDONLY: the open waits (on libuv's thread
 * pool) until the writer (the shim) opens its end, so that a read before the shim starts is not taken for EOF; the
 * stream is then a libuv pipe (epoll, no thread held) and ends when the shim closes its end. `cancel()` unblocks a
 * pending open by holding a write end itself, and destroys the stream.
 */
export function openFifoReader(path: string): { readonly stream: Promise<Socket>; cancel(): Promise<void> } {
  let cancelled = false;
  let socket: Socket | undefined;
  const stream = openFd(path, constants.O_RDONLY).then((fd) => {
    socket = new Socket({ fd, readable: true, writable: false });
    if (cancelled) socket.destroy();
    return socket;
  });
  return {
    stream,
    async cancel() {
      if (cancelled) return;
      cancelled = true;
      if (socket) {
        socket.destroy();
        return;
      }
      // The reader's open(2) is blocked, or queued on the thread pool and about to block: holding a write end
      // (O_RDWR never blocks nor fails for want of a reader) completes it whenever it runs; then both close.
      const unblock = await openFd(path, constants.O_RDWR | constants.O_NONBLOCK).catch(() => undefined);
      try {
        await stream.catch(() => undefined);
      } finally {
        if (unblock !== undefined) closeSync(unblock);
      }
    },
  };
}

/**
 * Opens a FIFO for writing without blocking whether or not the shim has opened it yet (O_RDWR never blocks on a
 * FIFO on Linux): what is written waits in the pipe. Ending the stream closes it; the process sees EOF once the
 * shim's own write end is closed too (Tasks.CloseIO), as with containerd.
 */
export async function openFifoWriter(path: string): Promise<Socket> {
  const fd = await openFd(path, constants.O_RDWR | constants.O_NONBLOCK);
  return new Socket({ fd, readable: false, writable: true });
}
