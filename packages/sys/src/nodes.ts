// mknod(2) and mkfifo(3): device nodes, overlay whiteouts (0/0 character devices) and fifos.
import { libcOrUndefined, requireLibc } from './binding.js';
import { errnoError, notImplemented } from './errors.js';
import { runTool } from './exec.js';
import { cPath, showPath, type PathArg } from './path.js';

/**
 * mknod(2), synchronous (the layer applier calls it in order from a worker). `mode` includes the type bits
 * (S_IFCHR, S_IFBLK, S_IFIFO, S_IFREG, S_IFSOCK) and is subject to the umask; `dev` from makedev(). A whiteout is
 * `mknod(path, S_IFCHR, 0)`. Throws a SysError; with no FFI binding, a NotImplemented-style error (ENOSYS).
 */
export function mknod(path: PathArg, mode: number, dev: number | bigint = 0n): void {
  const libc = requireLibc('mknod');
  if (libc.mknod(cPath(path, 'mknod'), mode >>> 0, BigInt(dev)) !== 0) throw errnoError(libc.errno(), 'mknod', showPath(path));
}

/** mkfifo(3) (mode subject to the umask). Falls back to `mkfifo -m` (with the umask applied) without FFI. */
export async function mkfifo(path: PathArg, mode = 0o666): Promise<void> {
  const libc = libcOrUndefined();
  if (libc) {
    if (libc.mkfifo(cPath(path, 'mkfifo'), mode & 0o7777) !== 0) throw errnoError(libc.errno(), 'mkfifo', showPath(path));
    return;
  }
  if (typeof path !== 'string') throw notImplemented('mkfifo', 'a Buffer path needs the FFI binding, and koffi did not load');
  cPath(path, 'mkfifo');
  const effective = mode & 0o7777 & ~process.umask();
  await runTool({ file: 'mkfifo', args: ['-m', effective.toString(8), '--', path], syscall: 'mkfifo', path });
}
