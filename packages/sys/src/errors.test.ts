import { describe, expect, it } from 'vitest';
import { describeErrno, errnoError, notImplemented, unknownSysError } from './errors.js';

describe('errno errors', () => {
  it('are shaped like fs errors', () => {
    const err = errnoError(1, 'mount', 'overlay', '/mnt/x');
    expect(err).toBeInstanceOf(Error);
    expect(err).toMatchObject({ code: 'EPERM', errno: -1, syscall: 'mount', path: 'overlay', dest: '/mnt/x' });
    expect(err.message).toBe("EPERM: operation not permitted, mount 'overlay' -> '/mnt/x'");
    expect(errnoError(61, 'lgetxattr', '/f').message).toBe("ENODATA: no data available, lgetxattr '/f'");
    expect(err.stack).toContain('errors.test.ts');
  });

  it('name errnos libuv does not know, and say when the errno is unknown', () => {
    expect(describeErrno(95)).toEqual(['ENOTSUP', 'operation not supported']);
    expect(describeErrno(15)[0]).toBe('ENOTBLK');
    expect(describeErrno(100_000)).toEqual(['UNKNOWN', 'errno 100000']);
    expect(unknownSysError('mount', '/a').message).toBe("UNKNOWN: unknown error, mount '/a'");
  });

  it('mark what cannot be done here as not-implemented for @berth/core’s predicates', () => {
    const err = notImplemented('mknod', 'koffi did not load');
    expect(err).toMatchObject({ code: 'ENOSYS', errdef: 'not-implemented', syscall: 'mknod' });
    expect(err.message).toBe('mknod: not implemented: koffi did not load');
  });
});
