/** A path as string (UTF-8) or as raw bytes (names from a tar that are not UTF-8). */
export type PathArg = string | Buffer;

/** The path as libc takes it: strings are converted by koffi; Buffers get their NUL terminator. */
export function cPath(path: PathArg, syscall: string): string | Buffer {
  if (typeof path === 'string') {
    if (path.includes('\0')) throw invalidPath(syscall, path);
    return path;
  }
  if (!Buffer.isBuffer(path)) throw new TypeError(`${syscall}: path must be a string or a Buffer`);
  const nul = path.indexOf(0);
  if (nul !== -1 && nul !== path.length - 1) throw invalidPath(syscall, path);
  return nul === -1 ? Buffer.concat([path, Buffer.alloc(1)]) : path;
}

/** The path as an error message shows it. */
export function showPath(path: PathArg): string {
  return typeof path === 'string' ? path : path.toString('utf8').replace(/\0$/, '');
}

function invalidPath(syscall: string, path: PathArg): TypeError {
  const err = new TypeError(`${syscall}: path must not contain null bytes: '${showPath(path).replace(/\0/g, '\\0')}'`);
  (err as TypeError & { code: string }).code = 'ERR_INVALID_ARG_VALUE';
  return err;
}
