// The bundle's `log` FIFO: the long-lived shim opens it for writing (blocking) and makes it its stderr, so
// somebody must hold it open for reading before the shim serves, and keep draining it (shim-from-node.md,
// pitfall 2). Opened O_RDWR|O_NONBLOCK as containerd does: the open never blocks, the read side never sees EOF
// when the shim exits, and libuv reads it as a pipe (no thread pool). An existing FIFO is reopened, never
// re-created: a shim that survived a berthd restart still writes to that inode.
import { constants, openSync, closeSync } from 'node:fs';
import { lstat } from 'node:fs/promises';
import { Socket } from 'node:net';
import { FailedPreconditionError, isSystemError, type Logger } from '@berth/core';
import { mkfifo } from '@berth/sys';

const MAX_LINE = 16 * 1024;

type Level = 'debug' | 'info' | 'warn' | 'error';

/** The level of a logrus text line (`level=warning`), info when it has none. */
export function logrusLevel(line: string): Level {
  const m = /(?:^|\s)level=("?)(\w+)\1/.exec(line);
  switch (m?.[2]) {
    case 'trace':
    case 'debug':
      return 'debug';
    case 'warning':
    case 'warn':
      return 'warn';
    case 'error':
    case 'fatal':
    case 'panic':
      return 'error';
    default:
      return 'info';
  }
}

export class ShimLog {
  private buffered = '';
  private closed = false;

  private constructor(
    private readonly socket: Socket,
    private readonly log: Logger,
  ) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => this.onData(chunk));
    socket.on('error', (err) => {
      if (!this.closed) log.warn('reading the shim log failed', { error: err });
    });
  }

  /** Opens (creating it if missing) the FIFO at `path` and drains it into `log`, line by line. */
  static async open(path: string, log: Logger): Promise<ShimLog> {
    let exists = false;
    try {
      const s = await lstat(path);
      if (!s.isFIFO()) throw new FailedPreconditionError(`shim log ${path} exists and is not a FIFO`);
      exists = true;
    } catch (err) {
      if (!isSystemError(err) || err.code !== 'ENOENT') throw err;
    }
    if (!exists) await mkfifo(path, 0o700);
    const fd = openSync(path, constants.O_RDWR | constants.O_NONBLOCK);
    try {
      return new ShimLog(new Socket({ fd, readable: true, writable: false }), log);
    } catch (err) {
      closeSync(fd);
      throw err;
    }
  }

  private onData(chunk: string): void {
    this.buffered += chunk;
    for (;;) {
      const nl = this.buffered.indexOf('\n');
      if (nl < 0) break;
      this.emit(this.buffered.slice(0, nl));
      this.buffered = this.buffered.slice(nl + 1);
    }
    if (this.buffered.length > MAX_LINE) {
      this.emit(this.buffered);
      this.buffered = '';
    }
  }

  private emit(line: string): void {
    const text = line.trimEnd();
    if (!text) return;
    this.log[logrusLevel(text)]('shim', { shim_log: text });
  }

  /** Stops reading and closes the FIFO (whatever the shim writes later is dropped, as when berthd is down). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.buffered) this.emit(this.buffered);
    this.buffered = '';
    this.socket.destroy();
  }
}
