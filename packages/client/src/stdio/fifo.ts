// A process's stdio FIFOs, client-side, as containerd's cio makes them (NewFIFOSetInDir): a private directory
// under the FIFO root (0700) holding `<id>-stdin`, `<id>-stdout` and `<id>-stderr`; no stderr with a terminal (the
// pty carries both streams). The paths go to Tasks.Create/Exec; the shim opens the other ends.
import { constants, openSync } from 'node:fs';
import { lstat, mkdir, mkdtemp, readdir, rm, rmdir, unlink } from 'node:fs/promises';
import { Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { mkfifo } from '@berth/sys';
import { InvalidArgumentError } from '@berth/core';

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
 * Opens a FIFO for reading without holding a thread: O_RDONLY|O_NONBLOCK returns at once whether or not the shim has
 * opened its end, and the stream is a libuv pipe on epoll. Linux reports a FIFO's hang-up to a reader only after a
 * writer has come and gone since the reader opened, so a stream opened before the shim starts waits for the shim's
 * output instead of taking its absence for EOF (what containerd's blocking O_RDONLY open gives), and ends when the
 * shim closes its end. A blocking open would sit on one of libuv's four pool threads until a writer came: a few
 * unopened FIFOs (a failed Create, a process that never started) starved every other file operation of the process.
 * `cancel()` destroys the stream.
 */
export function openFifoReader(path: string): { readonly stream: Promise<Socket>; cancel(): Promise<void> } {
  let socket: Socket | undefined;
  let stream: Promise<Socket>;
  try {
    socket = new Socket({ fd: openSync(path, constants.O_RDONLY | constants.O_NONBLOCK), readable: true, writable: false });
    stream = Promise.resolve(socket);
  } catch (err) {
    stream = Promise.reject(err);
    stream.catch(() => undefined);
  }
  return {
    stream,
    async cancel() {
      socket?.destroy();
    },
  };
}

/**
 * Opens a FIFO for writing without blocking whether or not the shim has opened it yet (O_RDWR never blocks on a
 * FIFO on Linux, nor fails for want of a reader): what is written waits in the pipe. Ending the stream closes it;
 * the process sees EOF once the shim's own write end is closed too (Tasks.CloseIO), as with containerd.
 */
export async function openFifoWriter(path: string): Promise<Socket> {
  const fd = openSync(path, constants.O_RDWR | constants.O_NONBLOCK);
  return new Socket({ fd, readable: false, writable: true });
}
