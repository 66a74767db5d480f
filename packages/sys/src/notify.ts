// systemd's readiness protocol (sd_notify(3)) over a Unix datagram socket, which node:dgram cannot open: a daemon
// run by a `Type=notify` unit sends `READY=1` to $NOTIFY_SOCKET once it serves, `STOPPING=1` when it shuts down.
import { requireLibc } from './binding.js';
import { errnoError } from './errors.js';

const AF_UNIX = 1;
const SOCK_DGRAM = 2;
const SOCK_CLOEXEC = 0o2000000;
const MSG_DONTWAIT = 0x40;
const MSG_NOSIGNAL = 0x4000;
const EAGAIN = 11;
/** sizeof(struct sockaddr_un): a 2-byte family and 108 bytes of path. */
const SOCKADDR_UN_SIZE = 110;

/** The environment variable systemd sets for a `Type=notify` service. */
export const NOTIFY_SOCKET_ENV = 'NOTIFY_SOCKET';

/**
 * struct sockaddr_un for `path` and the length to pass with it. A leading `@` names an abstract socket (the name
 * that follows, after a NUL byte, with no terminator), as systemd writes them in $NOTIFY_SOCKET.
 */
export function unixAddress(path: string): { readonly addr: Buffer; readonly length: number } {
  const abstract = path.startsWith('@');
  const name = Buffer.from(abstract ? path.slice(1) : path);
  // Abstract: NUL + name; a path: name + NUL terminator. Either way one byte more than the name.
  if (name.length + 1 > SOCKADDR_UN_SIZE - 2) throw errnoError(36 /* ENAMETOOLONG */, 'connect', path);
  const addr = Buffer.alloc(SOCKADDR_UN_SIZE);
  addr.writeUInt16LE(AF_UNIX, 0);
  name.copy(addr, abstract ? 3 : 2);
  return { addr, length: 2 + 1 + name.length };
}

/**
 * Sends `state` (newline-separated assignments, e.g. `READY=1`) to the service manager at $NOTIFY_SOCKET. Returns
 * false when the variable is unset (not run by a notify unit), true once sent; throws a SysError when the socket
 * cannot be reached, which a caller logs and goes on.
 */
export function sdNotify(state: string, env: NodeJS.ProcessEnv = process.env): boolean {
  const target = env[NOTIFY_SOCKET_ENV];
  if (!target) return false;
  if (!target.startsWith('/') && !target.startsWith('@')) throw errnoError(22 /* EINVAL */, 'sendto', target);
  const c = requireLibc('socket');
  const { addr, length } = unixAddress(target);
  const fd = c.socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw errnoError(c.errno(), 'socket', target);
  try {
    const data = Buffer.from(state);
    if (c.sendto(fd, data, data.length, MSG_NOSIGNAL, addr, length) < 0) throw errnoError(c.errno(), 'sendto', target);
    return true;
  } finally {
    c.close(fd);
  }
}

/** A bound Unix datagram socket that is read by polling: the service manager's end, for tests and tools. */
export interface DatagramSocket {
  readonly path: string;
  /** The next datagram as text, or undefined when none came within `timeoutMs`. */
  receive(timeoutMs: number): Promise<string | undefined>;
  close(): void;
}

/** Binds a Unix datagram socket at `path` (a file path, or `@name` for an abstract one). */
export function bindDatagramSocket(path: string): DatagramSocket {
  const c = requireLibc('socket');
  const { addr, length } = unixAddress(path);
  const fd = c.socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw errnoError(c.errno(), 'socket', path);
  if (c.bind(fd, addr, length) < 0) {
    const err = errnoError(c.errno(), 'bind', path);
    c.close(fd);
    throw err;
  }
  let open = true;
  const buffer = Buffer.alloc(4096);
  return {
    path,
    async receive(timeoutMs: number): Promise<string | undefined> {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        if (!open) return undefined;
        const n = c.recv(fd, buffer, buffer.length, MSG_DONTWAIT);
        if (n >= 0) return buffer.toString('utf8', 0, n);
        const errno = c.errno();
        if (errno !== EAGAIN) throw errnoError(errno, 'recv', path);
        if (Date.now() >= deadline) return undefined;
        await new Promise((r) => setTimeout(r, 10));
      }
    },
    close(): void {
      if (open) c.close(fd);
      open = false;
    },
  };
}
