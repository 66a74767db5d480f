// Copying a process's stdio between this process's streams and its FIFOs (containerd's cio copyIO, and ctr's
// console handling): stdout and stderr FIFOs to the given writers until the shim closes them, the given reader to
// the stdin FIFO with Tasks.CloseIO when it ends; with a terminal, raw mode on a TTY stdin and the pty's size
// following the window (SIGWINCH); without one, the signals this process gets forwarded to the process.
import { constants as osConstants } from 'node:os';
import type { Readable, Writable } from 'node:stream';
import type { Socket } from 'node:net';
import { openFifoReader, openFifoWriter } from './fifo.js';

/** The FIFO paths of a process ('' for none), as Tasks.Create/Exec got them or Tasks.Get reports them. */
export interface StdioPaths {
  readonly stdin: string;
  readonly stdout: string;
  readonly stderr: string;
  readonly terminal: boolean;
}

export interface StdioStreams {
  readonly stdin?: Readable & { isTTY?: boolean; setRawMode?(mode: boolean): unknown };
  readonly stdout: Writable;
  readonly stderr?: Writable;
}

export interface AttachOptions {
  /** Called once stdin has ended and everything read was written (ctr: Tasks.CloseIO with stdin). */
  readonly closeStdin?: () => Promise<void>;
  /**
   * Settles once the shim holds the FIFOs (Tasks.Create or Exec returned). Until then the stdin FIFO stays open
   * here even if stdin has ended: a pipe that nobody holds open loses what was written into it.
   */
  readonly ready?: Promise<unknown>;
  /** Put a TTY stdin in raw mode while attached (with a terminal). Default: terminal && stdin.isTTY. */
  readonly rawMode?: boolean;
}

/** An attachment: `output` settles when stdout and stderr reached EOF; `close()` detaches (idempotent). */
export interface Attachment {
  readonly output: Promise<void>;
  close(): Promise<void>;
}

function copyOut(reader: ReturnType<typeof openFifoReader>, to: Writable): Promise<void> {
  return reader.stream.then(
    (socket: Socket) =>
      new Promise<void>((resolve) => {
        socket.on('data', (chunk: Buffer) => {
          if (!to.write(chunk)) {
            socket.pause();
            to.once('drain', () => socket.resume());
          }
        });
        socket.once('end', () => resolve());
        socket.once('close', () => resolve());
        socket.once('error', () => resolve());
      }),
    () => undefined,
  );
}

/** Starts copying. Open the FIFOs before Tasks.Create (as containerd does) so that nothing written is missed. */
export async function attachStdio(paths: StdioPaths, streams: StdioStreams, options: AttachOptions = {}): Promise<Attachment> {
  const readers: ReturnType<typeof openFifoReader>[] = [];
  const copies: Promise<void>[] = [];
  if (paths.stdout !== '') {
    const r = openFifoReader(paths.stdout);
    readers.push(r);
    copies.push(copyOut(r, streams.stdout));
  }
  if (!paths.terminal && paths.stderr !== '') {
    const r = openFifoReader(paths.stderr);
    readers.push(r);
    copies.push(copyOut(r, streams.stderr ?? streams.stdout));
  }
  let writer: Socket | undefined;
  let rawSet = false;
  let closed = false;
  const input = streams.stdin;
  const onData = (chunk: Buffer) => {
    if (writer && !writer.destroyed && !writer.write(chunk)) {
      input?.pause();
      writer.once('drain', () => input?.resume());
    }
  };
  if (paths.stdin !== '' && input) {
    try {
      writer = await openFifoWriter(paths.stdin);
    } catch (err) {
      await Promise.all(readers.map((r) => r.cancel()));
      throw err;
    }
    writer.on('error', () => undefined);
    if (paths.terminal && (options.rawMode ?? input.isTTY === true) && typeof input.setRawMode === 'function') {
      input.setRawMode(true);
      rawSet = true;
    }
    void new Promise<void>((resolve) => {
      input.once('end', () => {
        void (options.ready ?? Promise.resolve()).catch(() => undefined).then(() => {
          const w = writer;
          if (!w || w.destroyed) return resolve();
          w.end(() => resolve());
        });
      });
    }).then(async () => {
      if (!closed) await options.closeStdin?.().catch(() => undefined);
    });
    input.on('data', onData);
    input.resume();
  }
  return {
    output: Promise.all(copies).then(() => undefined),
    async close() {
      if (closed) return;
      closed = true;
      if (input) {
        input.off('data', onData);
        input.pause();
        if (rawSet) input.setRawMode?.(false);
      }
      writer?.destroy();
      await Promise.all(readers.map((r) => r.cancel()));
    },
  };
}

/** Sets the pty size now and whenever the window changes (a TTY stream's `resize` event, i.e. SIGWINCH). */
export function followWindowSize(
  tty: { columns?: number; rows?: number; on(event: 'resize', f: () => void): unknown; off(event: 'resize', f: () => void): unknown },
  resize: (size: { width: number; height: number }) => Promise<void>,
): () => void {
  const apply = () => {
    const width = tty.columns ?? 0;
    const height = tty.rows ?? 0;
    if (width > 0 && height > 0) void resize({ width, height }).catch(() => undefined);
  };
  apply();
  tty.on('resize', apply);
  return () => tty.off('resize', apply);
}

/** The signals ctr forwards to a task it runs without a terminal (all catchable ones but SIGCHLD/SIGPIPE/SIGURG/SIGWINCH). */
export const FORWARDED_SIGNALS: readonly NodeJS.Signals[] = ['SIGHUP', 'SIGINT', 'SIGQUIT', 'SIGTERM', 'SIGUSR1', 'SIGUSR2', 'SIGALRM', 'SIGCONT', 'SIGTSTP', 'SIGTTIN', 'SIGTTOU'];

/** Forwards these signals (by number) to `kill` until the returned function is called. */
export function forwardSignals(kill: (signal: number) => Promise<void>, signals: readonly NodeJS.Signals[] = FORWARDED_SIGNALS): () => void {
  const handlers = signals.map((name) => {
    const handler = () => void kill(osConstants.signals[name]).catch(() => undefined);
    process.on(name, handler);
    return [name, handler] as const;
  });
  return () => {
    for (const [name, handler] of handlers) process.off(name, handler);
  };
}
