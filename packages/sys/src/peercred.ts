// getsockopt(SO_PEERCRED): who is on the other end of a unix socket, as the kernel recorded it at connect(2).
import type { Socket } from 'node:net';
import { requireLibc } from './binding.js';
import { errnoError } from './errors.js';

const SOL_SOCKET = 1;
const SO_PEERCRED = 17;
const EBADF = 9;
const ucred = Buffer.alloc(12); // struct ucred { pid_t pid; uid_t uid; gid_t gid; }
const ucredLength = new Uint32Array(1);

export interface PeerCredentials {
  readonly pid: number;
  readonly uid: number;
  readonly gid: number;
}

/**
 * The pid, uid and gid of the process that connected (or accepted) the other end of a unix socket. The fd comes
 * from `socket._handle.fd`, undocumented but stable in Node (net.Socket keeps its libuv pipe there). Throws EBADF
 * for a socket without an fd (closed, or not yet connected), ENOTSOCK/ENOPROTOOPT for something that is no unix
 * socket, and a NotImplemented-style error without the FFI binding.
 */
export function peerCredentials(socket: Socket): PeerCredentials {
  const libc = requireLibc('getsockopt');
  const fd = (socket as unknown as { _handle?: { fd?: unknown } | null })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) throw errnoError(EBADF, 'getsockopt');
  // One buffer for every call: the call is synchronous and nothing keeps a reference to it.
  ucredLength[0] = ucred.length;
  if (libc.getsockopt(fd, SOL_SOCKET, SO_PEERCRED, ucred, ucredLength) !== 0) throw errnoError(libc.errno(), 'getsockopt');
  return { pid: ucred.readInt32LE(0), uid: ucred.readUInt32LE(4), gid: ucred.readUInt32LE(8) };
}
