// Linux constants for the calls in this package (from <sys/mount.h>, <sys/stat.h>, <sys/xattr.h>); the same on
// every Linux architecture Node runs on.

/** mount(2) flags. */
export const MS_RDONLY = 0x1;
export const MS_NOSUID = 0x2;
export const MS_NODEV = 0x4;
export const MS_NOEXEC = 0x8;
export const MS_SYNCHRONOUS = 0x10;
export const MS_REMOUNT = 0x20;
export const MS_MANDLOCK = 0x40;
export const MS_DIRSYNC = 0x80;
export const MS_NOSYMFOLLOW = 0x100;
export const MS_NOATIME = 0x400;
export const MS_NODIRATIME = 0x800;
export const MS_BIND = 0x1000;
export const MS_MOVE = 0x2000;
export const MS_REC = 0x4000;
export const MS_SILENT = 0x8000;
export const MS_UNBINDABLE = 0x20000;
export const MS_PRIVATE = 0x40000;
export const MS_SLAVE = 0x80000;
export const MS_SHARED = 0x100000;
export const MS_RELATIME = 0x200000;
export const MS_STRICTATIME = 0x1000000;
export const MS_LAZYTIME = 0x2000000;

/** umount2(2) flags. */
export const MNT_FORCE = 0x1;
export const MNT_DETACH = 0x2;
export const MNT_EXPIRE = 0x4;
export const UMOUNT_NOFOLLOW = 0x8;

/** File type bits of a mode (mknod(2)). */
export const S_IFMT = 0o170000;
export const S_IFSOCK = 0o140000;
export const S_IFREG = 0o100000;
export const S_IFBLK = 0o060000;
export const S_IFCHR = 0o020000;
export const S_IFIFO = 0o010000;

/** setxattr(2) flags: fail if the attribute exists / does not exist. */
export const XATTR_CREATE = 0x1;
export const XATTR_REPLACE = 0x2;

/** A device number from major and minor, as glibc's makedev (12-bit major, 20-bit minor split encoding). */
export function makedev(major: number, minor: number): bigint {
  const ma = BigInt(major >>> 0);
  const mi = BigInt(minor >>> 0);
  return ((ma & 0xfffn) << 8n) | ((ma & 0xfffff000n) << 32n) | (mi & 0xffn) | ((mi & 0xffffff00n) << 12n);
}

/** major and minor of a device number (inverse of makedev; `fs.Stats.rdev` is a number). */
export function splitDev(dev: number | bigint): { readonly major: number; readonly minor: number } {
  const d = BigInt(dev);
  const major = Number(((d >> 8n) & 0xfffn) | ((d >> 32n) & 0xfffff000n));
  const minor = Number((d & 0xffn) | ((d >> 12n) & 0xffffff00n));
  return { major, minor };
}
