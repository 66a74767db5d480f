import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { XATTR_CREATE, XATTR_REPLACE } from './constants.js';
import { mountAll } from './mount.js';
import { lgetxattr, llistxattr, lsetxattr } from './xattr.js';
import { Scratch, whyNoRoot } from './testing-fixtures/scratch.js';

const noRoot = whyNoRoot();
const getfattr = '/usr/bin/getfattr';

describe.skipIf(noRoot !== undefined)(`xattrs as root${noRoot ? ` (skipped: ${noRoot})` : ''}`, () => {
  let scratch: Scratch;
  beforeAll(async () => {
    scratch = await Scratch.create();
  });
  afterAll(async () => {
    await scratch?.dispose();
  });

  const binary = Buffer.from([0x00, 0xff, 0x80, 0xfe, 0x00]);

  it('sets, reads and lists binary trusted.* and user.* values byte for byte', () => {
    const f = scratch.path('file');
    writeFileSync(f, '');
    lsetxattr(f, 'trusted.bin', binary);
    lsetxattr(f, 'user.text', 'héllo');
    lsetxattr(f, 'user.empty', Buffer.alloc(0));
    expect(lgetxattr(f, 'trusted.bin')).toEqual(binary);
    expect(lgetxattr(f, 'user.text').toString('utf8')).toBe('héllo');
    expect(lgetxattr(f, 'user.empty')).toEqual(Buffer.alloc(0));
    expect(llistxattr(f).sort()).toEqual(['trusted.bin', 'user.empty', 'user.text']);
    if (existsSync(getfattr)) {
      // An independent reader agrees on the bytes.
      const out = execFileSync(getfattr, ['--absolute-names', '-n', 'trusted.bin', '-e', 'hex', f], { encoding: 'utf8' });
      expect(out).toContain('trusted.bin=0x00ff80fe00');
    }
  });

  it('acts on a symlink itself, not its target', () => {
    const target = scratch.path('target');
    writeFileSync(target, '');
    const link = scratch.path('link');
    symlinkSync(target, link);
    lsetxattr(link, 'trusted.on-link', 'L');
    expect(lgetxattr(link, 'trusted.on-link').toString()).toBe('L');
    expect(llistxattr(target)).toEqual([]);
  });

  it('honours XATTR_CREATE / XATTR_REPLACE and reports ENODATA, EEXIST, ENOENT with the path and name', () => {
    const f = scratch.path('flags');
    writeFileSync(f, '');
    expect(() => lgetxattr(f, 'user.none')).toThrow(expect.objectContaining({ code: 'ENODATA', syscall: 'lgetxattr', path: f, dest: 'user.none' }));
    expect(() => lsetxattr(f, 'user.a', 'x', XATTR_REPLACE)).toThrow(expect.objectContaining({ code: 'ENODATA' }));
    lsetxattr(f, 'user.a', 'x', XATTR_CREATE);
    expect(() => lsetxattr(f, 'user.a', 'y', XATTR_CREATE)).toThrow(expect.objectContaining({ code: 'EEXIST' }));
    lsetxattr(f, 'user.a', 'longer value', XATTR_REPLACE);
    expect(lgetxattr(f, 'user.a').toString()).toBe('longer value');
    const missing = scratch.path('missing');
    expect(() => llistxattr(missing)).toThrow(expect.objectContaining({ code: 'ENOENT', syscall: 'llistxattr', path: missing }));
    expect(() => lsetxattr(f, 'bogusnamespace.a', 'x')).toThrow(expect.objectContaining({ code: 'ENOTSUP' }));
  });

  it('writes an overlay opaque marker the kernel honours (trusted.overlay.opaque=y hides the lower dir)', async () => {
    const lower = scratch.path('ov/lower/d');
    mkdirSync(lower, { recursive: true });
    writeFileSync(`${lower}/from-lower`, '');
    const upper = scratch.path('ov/upper/d');
    mkdirSync(upper, { recursive: true });
    writeFileSync(`${upper}/from-upper`, '');
    mkdirSync(scratch.path('ov/work'));
    mkdirSync(scratch.path('ov/merged'));
    const m = { type: 'overlay', source: 'overlay', options: [`lowerdir=${scratch.path('ov/lower')}`, `upperdir=${scratch.path('ov/upper')}`, `workdir=${scratch.path('ov/work')}`] };
    await mountAll([m], scratch.path('ov/merged'));
    expect(readdirSync(scratch.path('ov/merged/d')).sort()).toEqual(['from-lower', 'from-upper']);
    await scratch.unmount(scratch.path('ov/merged'));
    lsetxattr(upper, 'trusted.overlay.opaque', 'y');
    await mountAll([m], scratch.path('ov/merged'));
    expect(readdirSync(scratch.path('ov/merged/d'))).toEqual(['from-upper']);
  });
});
