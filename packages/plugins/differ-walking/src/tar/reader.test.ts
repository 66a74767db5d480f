import { chownSync, linkSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { lsetxattr, lutimens, mkfifo, mknod, S_IFCHR, makedev } from '@berth/sys';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { gnuTar, hasRoot, removeDir, tempDir } from '../testing-fixtures/layers.js';
import type { TarEntry } from './header.js';
import { TarReader } from './reader.js';

interface Read {
  entry: TarEntry;
  data: Buffer;
}

/** Reads a whole archive, fed in pieces of the given sizes (cycled), as a decompressor's output arrives. */
function readAll(tar: Buffer, pieces: readonly number[] = [tar.length]): Read[] {
  const out: Read[] = [];
  let parts: Buffer[] = [];
  const reader = new TarReader({
    entry: (entry) => {
      parts = [];
      out.push({ entry, data: Buffer.alloc(0) });
    },
    data: (chunk) => parts.push(Buffer.from(chunk)),
    end: () => {
      out[out.length - 1]!.data = Buffer.concat(parts);
    },
  });
  let pos = 0;
  for (let i = 0; pos < tar.length; i++) {
    const n = pieces[i % pieces.length]!;
    // A copy, overwritten after push, as a stream's reused buffer would be: the reader must not keep references.
    const chunk = Buffer.from(tar.subarray(pos, pos + n));
    reader.push(chunk);
    chunk.fill(0xaa);
    pos += n;
  }
  reader.finish();
  expect(reader.ended).toBe(true);
  return out;
}

const byName = (entries: Read[], name: string) => {
  const found = entries.find((e) => e.entry.name === name);
  if (!found) throw new Error(`no entry ${name} in ${entries.map((e) => e.entry.name).join(', ')}`);
  return found;
};

// A v2 file capability (cap_setgid and cap_setuid permitted, effective): 0xc0 is a byte a UTF-8 decode corrupts.
const CAPABILITY = Buffer.from('01000002c0000000000000000000000000000000', 'hex');
const BINARY = Buffer.from([0x00, 0xff, 0x80, 0xfe]);
const LONG_DIR = 'd'.repeat(60);
const LONG_NAME = `${LONG_DIR}/${'n'.repeat(90)}.txt`; // 155 characters: longer than the 100-byte name field
const LONG_TARGET = `../${'t'.repeat(130)}`;

describe.skipIf(!hasRoot())('TarReader on archives made by GNU tar', () => {
  let dir: string;
  beforeEach(() => {
    dir = tempDir();
    const p = (n: string) => join(dir, n);
    writeFileSync(p('plain.txt'), 'hello, layer\n');
    writeFileSync(p('big.bin'), Buffer.alloc(70_000, 7).fill(9, 1000, 2000));
    writeFileSync(p('owned'), 'x');
    chownSync(p('owned'), 3_000_000, 3_000_001); // over ustar's 7 octal digits: PAX uid/gid, GNU base-256
    writeFileSync(p('caps'), 'cap');
    lsetxattr(p('caps'), 'security.capability', CAPABILITY);
    lsetxattr(p('caps'), 'user.bin', BINARY);
    lutimens(p('caps'), { sec: 1_600_000_000, nsec: 123_456_789 }, { sec: 1_600_000_000, nsec: 123_456_789 });
    writeFileSync(p('link-target'), 'shared');
    linkSync(p('link-target'), p('hardlink'));
    symlinkSync(LONG_TARGET, p('longlink'));
    mkdirSync(p(LONG_DIR));
    writeFileSync(p(LONG_NAME), 'long');
    mknod(p('null'), S_IFCHR | 0o640, makedev(1, 3));
  });
  afterEach(() => removeDir(dir));

  const names = ['plain.txt', 'big.bin', 'owned', 'caps', 'link-target', 'hardlink', 'longlink', LONG_DIR, LONG_NAME, 'null'];

  it('reads PAX: big uid/gid, binary SCHILY.xattr values byte for byte, nanosecond mtime, long names', async () => {
    await mkfifo(join(dir, 'fifo'), 0o600);
    const entries = readAll(gnuTar(dir, [...names, 'fifo'], { format: 'posix' }));
    expect(entries.map((e) => e.entry.name)).toEqual([...names.slice(0, 7), `${LONG_DIR}/`, LONG_NAME, 'null', 'fifo']);
    expect(byName(entries, 'plain.txt').data.toString()).toBe('hello, layer\n');
    expect(byName(entries, 'plain.txt').entry).toMatchObject({ type: '0', mode: 0o644, uid: 0, gid: 0, size: 13 });
    expect(byName(entries, 'owned').entry).toMatchObject({ uid: 3_000_000, gid: 3_000_001 });
    const caps = byName(entries, 'caps').entry;
    expect(caps.xattrs?.get('security.capability')?.toString('hex')).toBe(CAPABILITY.toString('hex'));
    expect(caps.xattrs?.get('user.bin')?.toString('hex')).toBe('00ff80fe');
    expect(caps.mtime).toEqual({ sec: 1_600_000_000, nsec: 123_456_789 });
    expect(byName(entries, 'hardlink').entry).toMatchObject({ type: '1', linkname: 'link-target', size: 0 });
    expect(byName(entries, 'longlink').entry).toMatchObject({ type: '2', linkname: LONG_TARGET });
    expect(byName(entries, LONG_NAME).data.toString()).toBe('long');
    expect(byName(entries, `${LONG_DIR}/`).entry.type).toBe('5');
    expect(byName(entries, 'null').entry).toMatchObject({ type: '3', devmajor: 1, devminor: 3, mode: 0o640 });
    expect(byName(entries, 'fifo').entry).toMatchObject({ type: '6', mode: 0o600 });
  });

  it('reads GNU format: L/K long names and base-256 ids', () => {
    const entries = readAll(gnuTar(dir, names, { format: 'gnu' }));
    expect(byName(entries, LONG_NAME).data.toString()).toBe('long');
    expect(byName(entries, 'longlink').entry.linkname).toBe(LONG_TARGET);
    expect(byName(entries, 'owned').entry).toMatchObject({ uid: 3_000_000, gid: 3_000_001 });
    expect(byName(entries, 'hardlink').entry).toMatchObject({ type: '1', linkname: 'link-target' });
    expect(byName(entries, 'caps').entry.xattrs).toBeUndefined();
  });

  it('gives the same entries and data whatever the chunk boundaries', () => {
    const tar = gnuTar(dir, names, { format: 'posix' });
    const whole = readAll(tar);
    for (const pieces of [[1], [7, 511, 513], [512], [100_000], [3, 1024, 65_536]]) {
      const split = readAll(tar, pieces);
      expect(split.map((e) => [e.entry, e.data.toString('hex')])).toEqual(whole.map((e) => [e.entry, e.data.toString('hex')]));
    }
    const big = byName(whole, 'big.bin').data;
    expect(big.length).toBe(70_000);
    expect(big[1500]).toBe(9);
    expect(big[69_999]).toBe(7);
  });

  it('refuses a truncated archive and a header with a bad checksum', () => {
    const tar = gnuTar(dir, ['plain.txt', 'big.bin'], { format: 'posix' });
    // Cut inside big.bin's data.
    const cut = tar.subarray(0, tar.indexOf(Buffer.alloc(1000, 7)) + 10);
    expect(() => readAll(cut)).toThrow(/unexpected end of archive/);
    const bad = Buffer.from(tar);
    bad[0] ^= 0x01; // the first header's name: its checksum no longer matches
    expect(() => readAll(bad)).toThrow(/checksum mismatch/);
  });
});

describe('TarReader on hand-made records', () => {
  it('refuses a PAX record whose length runs past the header', async () => {
    const { entryHeader } = await import('./writer.js');
    const good = entryHeader({ name: 'x', type: '0', mode: 0o644, uid: 0, gid: 0, size: 0, mtime: 0, xattrs: new Map([['user.a', Buffer.from('b')]]) });
    const bad = Buffer.from(good);
    // The PAX body starts right after its header block: "<len> SCHILY.xattr.user.a=b\n"; make the length too big.
    bad.write('99', 512, 'latin1');
    const header = bad.subarray(0, 512);
    let sum = 0;
    header.fill(0x20, 148, 156);
    for (const c of header) sum += c;
    header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
    const reader = new TarReader({ entry: () => undefined, data: () => undefined, end: () => undefined });
    expect(() => reader.push(Buffer.concat([bad, Buffer.alloc(1024)]))).toThrow(/PAX record/);
  });
});
