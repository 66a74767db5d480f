// lsetxattr(2), lgetxattr(2), llistxattr(2): extended attributes of a path itself (a symlink is not followed), with
// binary values as Buffers (`security.capability`, `trusted.overlay.opaque`, anything a layer carries).
import { requireLibc } from './binding.js';
import { errnoError } from './errors.js';
import { cPath, showPath, type PathArg } from './path.js';

/** The largest value the kernel stores (XATTR_SIZE_MAX). */
const XATTR_SIZE_MAX = 64 * 1024;
const ERANGE = 34;

/** Sets `name` to `value` (bytes as given; a string is UTF-8). `flags`: XATTR_CREATE, XATTR_REPLACE. */
export function lsetxattr(path: PathArg, name: string, value: Buffer | string, flags = 0): void {
  const libc = requireLibc('lsetxattr');
  const bytes = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
  // koffi passes a pointer to the bytes; an empty Buffer still needs a valid pointer.
  const buf = bytes.length > 0 ? bytes : Buffer.alloc(1);
  if (libc.lsetxattr(cPath(path, 'lsetxattr'), name, buf, bytes.length, flags) !== 0) {
    throw errnoError(libc.errno(), 'lsetxattr', showPath(path), name);
  }
}

/** The value of `name`, as bytes. Throws ENODATA when the path has no such attribute. */
export function lgetxattr(path: PathArg, name: string): Buffer {
  const libc = requireLibc('lgetxattr');
  const p = cPath(path, 'lgetxattr');
  // Ask for the size, then read; the value may grow in between (ERANGE), so ask again.
  for (let attempt = 0; ; attempt++) {
    const size = libc.lgetxattr(p, name, null, 0);
    if (size < 0) throw errnoError(libc.errno(), 'lgetxattr', showPath(path), name);
    if (size === 0) return Buffer.alloc(0);
    const buf = Buffer.alloc(attempt < 3 ? size : XATTR_SIZE_MAX);
    const n = libc.lgetxattr(p, name, buf, buf.length);
    if (n >= 0) return buf.subarray(0, n);
    const errno = libc.errno();
    if (errno !== ERANGE || attempt >= 3) throw errnoError(errno, 'lgetxattr', showPath(path), name);
  }
}

/** The names of the path's extended attributes (those the caller may see: `trusted.*` needs CAP_SYS_ADMIN). */
export function llistxattr(path: PathArg): string[] {
  const libc = requireLibc('llistxattr');
  const p = cPath(path, 'llistxattr');
  for (let attempt = 0; ; attempt++) {
    const size = libc.llistxattr(p, null, 0);
    if (size < 0) throw errnoError(libc.errno(), 'llistxattr', showPath(path));
    if (size === 0) return [];
    const buf = Buffer.alloc(size);
    const n = libc.llistxattr(p, buf, size);
    if (n >= 0) return buf.subarray(0, n).toString('utf8').split('\0').filter((s) => s.length > 0);
    const errno = libc.errno();
    if (errno !== ERANGE || attempt >= 3) throw errnoError(errno, 'llistxattr', showPath(path));
  }
}
