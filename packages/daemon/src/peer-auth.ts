// containerd's `ttrpc.UnixSocketRequireSameUser` for berthd's ttrpc socket: only peers running with the daemon's
// own effective uid and gid (shims it started) are served. Anyone else, e.g. a member of the `[grpc] gid` group,
// could otherwise Forward forged events (`/tasks/exit` into any namespace).
import type { Socket } from 'node:net';
import type { Logger } from '@berth/core';
import { peerCredentials } from '@berth/sys';

export interface SameUserOptions {
  readonly uid?: number;
  readonly gid?: number;
  /** At most one log line per this interval; refusals in between are counted into the next line. */
  readonly logIntervalMs?: number;
  readonly now?: () => number;
}

/** An `authorizePeer` hook for TtrpcServer that checks SO_PEERCRED against the daemon's euid/egid. */
export function requireSameUser(log: Logger, options: SameUserOptions = {}): (socket: Socket) => boolean {
  const uid = options.uid ?? process.geteuid!();
  const gid = options.gid ?? process.getegid!();
  const interval = options.logIntervalMs ?? 60_000;
  const now = options.now ?? Date.now;
  let lastLog = -Infinity;
  let suppressed = 0;
  const warn = (msg: string, fields: Record<string, unknown>) => {
    const t = now();
    if (t - lastLog < interval) {
      suppressed++;
      return;
    }
    log.warn(msg, { ...fields, ...(suppressed > 0 ? { suppressed } : {}) });
    lastLog = t;
    suppressed = 0;
  };
  return (socket) => {
    let peer;
    try {
      peer = peerCredentials(socket);
    } catch (err) {
      // Without the peer's credentials nothing proves it is ours: refuse, as containerd's handshake would.
      warn('ttrpc: refused a connection whose peer credentials cannot be read', { error: err });
      return false;
    }
    if (peer.uid === uid && peer.gid === gid) return true;
    warn('ttrpc: refused a peer whose credentials differ from the daemon\'s (SO_PEERCRED)', {
      pid: peer.pid,
      uid: peer.uid,
      gid: peer.gid,
      want: { uid, gid },
    });
    return false;
  };
}
