import { closeSync, lstatSync, mkdtempSync, openSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { NO_FFI_ENV, resetBindingForTests } from './binding.js';
import { futimens, lutimens } from './times.js';

const ns = (sec: number, nsec: number) => BigInt(sec) * 1_000_000_000n + BigInt(nsec);

describe('lutimens / futimens', () => {
  const dir = mkdtempSync(join(tmpdir(), 'berth-sys-times-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  afterEach(() => {
    delete process.env[NO_FFI_ENV];
    resetBindingForTests();
  });

  it('sets times to the nanosecond on a path, on a symlink itself, and on an fd', () => {
    const file = join(dir, 'file');
    writeFileSync(file, 'x');
    lutimens(file, { sec: 1_600_000_000, nsec: 123_456_789 }, { sec: 1_500_000_000, nsec: 987_654_321 });
    let st = lstatSync(file, { bigint: true });
    expect(st.mtimeNs).toBe(ns(1_500_000_000, 987_654_321));
    expect(st.atimeNs).toBe(ns(1_600_000_000, 123_456_789));

    const link = join(dir, 'link');
    symlinkSync('file', link);
    lutimens(link, { sec: 1_000, nsec: 1 }, { sec: 2_000, nsec: 999_999_999 });
    expect(lstatSync(link, { bigint: true }).mtimeNs).toBe(ns(2_000, 999_999_999));
    // The target kept its own times.
    expect(statSync(file, { bigint: true }).mtimeNs).toBe(ns(1_500_000_000, 987_654_321));

    const fd = openSync(file, 'r');
    try {
      futimens(fd, { sec: 5, nsec: 0 }, { sec: 4_102_444_800, nsec: 500 });
    } finally {
      closeSync(fd);
    }
    st = lstatSync(file, { bigint: true });
    expect(st.mtimeNs).toBe(ns(4_102_444_800, 500));
  });

  it('reports the errno and the path, and refuses an invalid time before calling anything', () => {
    expect(() => lutimens(join(dir, 'missing'), { sec: 0, nsec: 0 }, { sec: 0, nsec: 0 })).toThrow(
      expect.objectContaining({ code: 'ENOENT', syscall: 'utimensat', path: join(dir, 'missing') }),
    );
    expect(() => futimens(-1, { sec: 0, nsec: 0 }, { sec: 0, nsec: 0 })).toThrow(expect.objectContaining({ code: 'EBADF' }));
    expect(() => lutimens(join(dir, 'file'), { sec: 0, nsec: 1e9 }, { sec: 0, nsec: 0 })).toThrow(RangeError);
  });

  it('falls back to fs.lutimesSync without FFI (to about a microsecond)', () => {
    process.env[NO_FFI_ENV] = '1';
    resetBindingForTests();
    const file = join(dir, 'fallback');
    writeFileSync(file, 'x');
    lutimens(file, { sec: 1_500_000_000, nsec: 250_000_000 }, { sec: 1_500_000_000, nsec: 250_000_000 });
    const mtime = lstatSync(file, { bigint: true }).mtimeNs;
    expect(Number(mtime - ns(1_500_000_000, 250_000_000))).toBeLessThan(1_000);
  });
});
