// utimensat(2) and futimens(3): file times to the nanosecond, on a path itself (a symlink is not followed) or an open
// fd. Node's lutimes/futimes take seconds as a double, which cannot carry nanoseconds (a PAX mtime of a tar entry
// keeps them, and so must the file made from it).
import { futimesSync, lutimesSync } from 'node:fs';
import { libcOrUndefined } from './binding.js';
import { errnoError } from './errors.js';
import { cPath, showPath, type PathArg } from './path.js';

/** A point in time as the kernel keeps it: whole seconds since the epoch and nanoseconds (0 to 999,999,999). */
export interface Timespec {
  readonly sec: number;
  readonly nsec: number;
}

const AT_FDCWD = -100;
const AT_SYMLINK_NOFOLLOW = 0x100;

function packTimes(atime: Timespec, mtime: Timespec): Buffer {
  const buf = Buffer.allocUnsafe(32);
  for (const [i, t] of [atime, mtime].entries()) {
    if (!Number.isSafeInteger(t.sec) || !Number.isInteger(t.nsec) || t.nsec < 0 || t.nsec > 999_999_999) {
      throw new RangeError(`invalid time { sec: ${t.sec}, nsec: ${t.nsec} }`);
    }
    buf.writeBigInt64LE(BigInt(t.sec), i * 16);
    buf.writeBigInt64LE(BigInt(t.nsec), i * 16 + 8);
  }
  return buf;
}

const seconds = (t: Timespec) => t.sec + t.nsec / 1e9;

/**
 * Sets the access and modification times of `path` itself (a symlink's own times), synchronously. Without the FFI
 * binding it falls back to fs.lutimesSync, which rounds to about a microsecond.
 */
export function lutimens(path: PathArg, atime: Timespec, mtime: Timespec): void {
  const times = packTimes(atime, mtime);
  const libc = libcOrUndefined();
  if (!libc) {
    lutimesSync(path, seconds(atime), seconds(mtime));
    return;
  }
  if (libc.utimensat(AT_FDCWD, cPath(path, 'utimensat'), times, AT_SYMLINK_NOFOLLOW) !== 0) {
    throw errnoError(libc.errno(), 'utimensat', showPath(path));
  }
}

/** The same for an open file descriptor (futimens(3)); falls back to fs.futimesSync. */
export function futimens(fd: number, atime: Timespec, mtime: Timespec): void {
  const times = packTimes(atime, mtime);
  const libc = libcOrUndefined();
  if (!libc) {
    futimesSync(fd, seconds(atime), seconds(mtime));
    return;
  }
  if (libc.futimens(fd, times) !== 0) throw errnoError(libc.errno(), 'futimens');
}
