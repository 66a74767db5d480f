import { lstatSync, mkdirSync, openSync, closeSync, writeSync, readSync, rmSync, mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { NO_FFI_ENV, resetBindingForTests } from './binding.js';
import { S_IFCHR, S_IFIFO, makedev, splitDev } from './constants.js';
import { mkfifo, mknod } from './nodes.js';
import { Scratch, whyNoRoot } from './testing-fixtures/scratch.js';

describe('makedev / splitDev', () => {
  it('round-trip glibc’s encoding, including majors and minors past the old 8-bit split', () => {
    expect(makedev(1, 3)).toBe(0x103n);
    expect(makedev(8, 0)).toBe(0x800n);
    for (const [ma, mi] of [[0, 0], [1, 3], [259, 65536], [4095, 255], [4096, 1 << 20], [0xfffff, 0xffffff]] as const) {
      expect(splitDev(makedev(ma, mi))).toEqual({ major: ma, minor: mi });
    }
    // /dev/null is 1:3 on every Linux.
    expect(splitDev(statSync('/dev/null').rdev)).toEqual({ major: 1, minor: 3 });
  });
});

describe('mkfifo', () => {
  const dir = mkdtempSync(join(tmpdir(), 'berth-sys-fifo-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  afterEach(() => {
    delete process.env[NO_FFI_ENV];
    resetBindingForTests();
  });

  for (const ffi of [true, false]) {
    it(`makes a fifo that carries data${ffi ? '' : ' (without FFI: the mkfifo tool)'}, and reports EEXIST with the path`, async () => {
      if (!ffi) {
        process.env[NO_FFI_ENV] = '1';
        resetBindingForTests();
      }
      const p = join(dir, `fifo-${ffi}`);
      await mkfifo(p, 0o600);
      const st = lstatSync(p);
      expect(st.isFIFO()).toBe(true);
      expect(st.mode & 0o777).toBe(0o600);
      const r = openSync(p, 'r+'); // O_RDWR on a fifo does not block
      writeSync(r, 'ping');
      const buf = Buffer.alloc(4);
      readSync(r, buf);
      closeSync(r);
      expect(buf.toString()).toBe('ping');
      await expect(mkfifo(p)).rejects.toMatchObject({ code: 'EEXIST', syscall: 'mkfifo', path: p });
    });
  }

  it('refuses a path with a NUL byte before calling anything', async () => {
    await expect(mkfifo(join(dir, 'a\0b'))).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
  });
});

const noRoot = whyNoRoot();

describe.skipIf(noRoot !== undefined)(`mknod as root${noRoot ? ` (skipped: ${noRoot})` : ''}`, () => {
  let scratch: Scratch;
  beforeAll(async () => {
    scratch = await Scratch.create();
  });
  afterAll(async () => {
    await scratch?.dispose();
  });

  it('makes an overlay whiteout: a 0/0 character device', () => {
    const p = scratch.path('whiteout');
    mknod(p, S_IFCHR, 0);
    const st = lstatSync(p);
    expect(st.isCharacterDevice()).toBe(true);
    expect(st.rdev).toBe(0);
    expect(st.mode & 0o7777).toBe(0);
  });

  it('makes a character device with a major and minor (/dev/null’s 1:3) and a fifo', () => {
    const p = scratch.path('null');
    mknod(p, S_IFCHR | 0o666, makedev(1, 3));
    const st = lstatSync(p);
    expect(st.isCharacterDevice()).toBe(true);
    expect(splitDev(st.rdev)).toEqual({ major: 1, minor: 3 });
    // It really is /dev/null: writes vanish, reads end at once.
    const fd = openSync(p, 'r+');
    expect(writeSync(fd, 'gone')).toBe(4);
    expect(readSync(fd, Buffer.alloc(4))).toBe(0);
    closeSync(fd);
    const f = scratch.path('fifo');
    mknod(f, S_IFIFO | 0o640);
    expect(lstatSync(f).isFIFO()).toBe(true);
  });

  it('takes raw byte names (not UTF-8) as a Buffer', () => {
    mkdirSync(scratch.path('raw'));
    const name = Buffer.concat([Buffer.from(scratch.path('raw') + '/'), Buffer.from([0xff, 0xfe, 0x41])]);
    mknod(name, S_IFCHR, 0);
    expect(lstatSync(name).isCharacterDevice()).toBe(true);
  });

  it('throws errno errors with the path', () => {
    const p = scratch.path('missing-dir', 'x');
    expect(() => mknod(p, S_IFCHR, 0)).toThrow(expect.objectContaining({ code: 'ENOENT', syscall: 'mknod', path: p }));
    expect(() => mknod(scratch.path('whiteout'), S_IFCHR, 0)).toThrow(`EEXIST: file already exists, mknod '${scratch.path('whiteout')}'`);
  });

  it('without FFI, throws a NotImplemented-style error (there is no tool fallback for it)', () => {
    process.env[NO_FFI_ENV] = '1';
    resetBindingForTests();
    try {
      expect(() => mknod(scratch.path('nope'), S_IFCHR, 0)).toThrow(
        expect.objectContaining({ code: 'ENOSYS', errdef: 'not-implemented', message: expect.stringContaining('mknod: not implemented') }),
      );
    } finally {
      delete process.env[NO_FFI_ENV];
      resetBindingForTests();
    }
  });
});
