// Listen backlogs sized like containerd's. Node listens with a backlog of 511; under a burst of connects the kernel
// queue of a unix socket fills before the event loop accepts, and clients get EAGAIN. Go (so containerd) listens
// with the system's net.core.somaxconn, read from /proc; berthd does the same on every socket it serves.
import { readFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';

const SOMAXCONN_PATH = '/proc/sys/net/core/somaxconn';
/** Go's fallback when /proc cannot be read (syscall.SOMAXCONN on Linux since 5.4). */
const FALLBACK_BACKLOG = 4096;
/** Kernels before 4.1 keep the backlog in 16 bits; Go caps there too. */
const MAX_BACKLOG = 0xffff;

let cached: number | undefined;

/** The listen backlog to use: net.core.somaxconn, capped at 65535, or 4096 when it cannot be read. */
export function systemListenBacklog(path = SOMAXCONN_PATH): number {
  if (path === SOMAXCONN_PATH && cached !== undefined) return cached;
  let n: number;
  try {
    n = Number.parseInt(readFileSync(path, 'utf8').trim(), 10);
  } catch {
    n = FALLBACK_BACKLOG;
  }
  if (!Number.isInteger(n) || n <= 0) n = FALLBACK_BACKLOG;
  n = Math.min(n, MAX_BACKLOG);
  if (path === SOMAXCONN_PATH) cached = n;
  return n;
}

/**
 * A net.Server listening on a unix socket with the system backlog, handing each accepted socket to `onConnection`
 * (for gRPC: grpc-js's connection injector, since its bindAsync takes no backlog).
 */
export async function listenUnix(path: string, onConnection: (socket: Socket) => void): Promise<Server> {
  const server = createServer(onConnection);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ path, backlog: systemListenBacklog() }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return server;
}
