import { chmod, chown, lstat, mkdir, unlink } from 'node:fs/promises';
import { connect } from 'node:net';
import { dirname } from 'node:path';
import { FailedPreconditionError, UnavailableError } from '@berth/core';

/** True when something accepts connections on the unix socket at `path`. */
function isListening(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(path);
    const finish = (answer: boolean) => {
      socket.destroy();
      resolve(answer);
    };
    socket.once('connect', () => finish(true));
    socket.once('error', () => finish(false));
    socket.setTimeout(1000, () => finish(false));
  });
}

/**
 * Makes `path` ready to bind: creates its directory, refuses when another process (another berthd) is serving it,
 * removes a stale socket left by a crash, and refuses to replace anything that is not a socket.
 */
export async function prepareSocketPath(path: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o711 });
  let stat;
  try {
    stat = await lstat(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  if (!stat.isSocket()) throw new FailedPreconditionError(`${path} exists and is not a socket; refusing to replace it`);
  if (await isListening(path)) throw new UnavailableError(`another daemon is already serving ${path}`);
  await unlink(path);
}

/** Owner-only (0600), or group access (0660) when a group is configured, as containerd's `[grpc] uid/gid`. */
export async function secureSocket(path: string, uid: number, gid: number): Promise<void> {
  if (uid !== 0 || gid !== 0) await chown(path, uid, gid);
  await chmod(path, gid !== 0 ? 0o660 : 0o600);
}

/** Owner-only (0600) and owned by the daemon, whatever `[grpc] uid/gid` say (the ttrpc socket: only shims use it). */
export async function ownerOnlySocket(path: string): Promise<void> {
  await chmod(path, 0o600);
}

export async function removeSocket(path: string): Promise<void> {
  await unlink(path).catch(() => undefined);
}
