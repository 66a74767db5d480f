// The contents of the fixture layers, as tar entries (tar.mjs). Nothing here reads the file system except the
// busybox binary; everything else is literal or comes from a seeded AES-256-CTR stream, so every build gives the
// same bytes.
import { createCipheriv, createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { posix } from 'node:path';

export const BUSYBOX = '/bin/busybox';

/** @typedef {import('./tar.mjs').TarEntry} TarEntry */

/** The Env every fixture config carries. */
export const FIXTURE_ENV = ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'];

/**
 * Deterministic incompressible bytes: AES-256-CTR over zeros, keyed by a hash of the seed string.
 * @param {string} seed
 * @param {number} length
 * @param {number} [offset] byte offset into the stream (a multiple of 16)
 */
export function seededBytes(seed, length, offset = 0) {
  if (offset % 16 !== 0) throw new Error('seededBytes: offset must be a multiple of 16');
  const key = createHash('sha256').update(`berth-fixture:${seed}`).digest();
  const iv = Buffer.alloc(16);
  iv.writeBigUInt64BE(BigInt(offset / 16), 8);
  const cipher = createCipheriv('aes-256-ctr', key, iv);
  return Buffer.concat([cipher.update(Buffer.alloc(length)), cipher.final()]);
}

/** @param {string} text */
const lines = (...text) => `${text.join('\n')}\n`;

/**
 * The root file system busybox needs: the binary, one relative symlink per applet (`busybox --list-full`), the
 * usual top-level directories and a minimal /etc.
 * @returns {TarEntry[]}
 */
export function busyboxEntries() {
  const binary = readFileSync(BUSYBOX);
  const applets = execFileSync(BUSYBOX, ['--list-full'], { encoding: 'utf8' })
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && l !== 'bin/busybox');
  /** @type {Map<string, TarEntry>} */
  const entries = new Map();
  const dir = (/** @type {string} */ path, mode = 0o755) => entries.set(path, { path, type: 'dir', mode });
  for (const d of ['bin', 'dev', 'etc', 'home', 'proc', 'sbin', 'sys', 'usr', 'usr/bin', 'usr/sbin', 'var']) dir(d);
  dir('root', 0o700);
  dir('tmp', 0o1777);
  entries.set('bin/busybox', { path: 'bin/busybox', type: 'file', mode: 0o755, data: binary });
  for (const applet of applets) {
    const parent = posix.dirname(applet);
    if (!entries.has(parent)) dir(parent);
    entries.set(applet, { path: applet, type: 'symlink', target: posix.relative(parent, 'bin/busybox') });
  }
  entries.set('etc/passwd', { path: 'etc/passwd', type: 'file', data: lines('root:x:0:0:root:/root:/bin/sh', 'nobody:x:65534:65534:nobody:/home:/bin/false') });
  entries.set('etc/group', { path: 'etc/group', type: 'file', data: lines('root:x:0:', 'nogroup:x:65534:') });
  return [...entries.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/** security.capability for cap_net_bind_service, effective: struct vfs_cap_data, revision 2 (20 bytes, LE). */
export const NET_BIND_SERVICE_CAPABILITY = (() => {
  const buf = Buffer.alloc(20);
  buf.writeUInt32LE(0x02000000 | 0x1, 0); // VFS_CAP_REVISION_2 | VFS_CAP_FLAGS_EFFECTIVE
  buf.writeUInt32LE(1 << 10, 4); // permitted[0]: CAP_NET_BIND_SERVICE = 10
  return buf;
})();

export const LONG_NAME = `data/long/${'l'.repeat(150)}`;
export const LONG_TARGET = `${'t/'.repeat(60)}end`;
export const USER_XATTR_BINARY = Buffer.from([0x00, 0xff, 0x80, 0xfe]);

/**
 * The `layers` image above its busybox base: three layers that exercise what an applier must get right. What the
 * unpacked tree must look like is in LAYERS_EXPECTED (and the test that checks umoci agrees).
 * @returns {TarEntry[][]}
 */
export function featureLayers() {
  /** @type {TarEntry[]} */
  const populate = [
    { path: 'etc', type: 'dir' },
    { path: 'etc/passwd', type: 'file', data: lines('root:x:0:0:root:/root:/bin/sh', 'berth:x:1000:1000:berth:/home/berth:/bin/sh', 'nobody:x:65534:65534:nobody:/home:/bin/false') },
    { path: 'etc/group', type: 'file', data: lines('root:x:0:', 'berth:x:1000:', 'nogroup:x:65534:') },
    { path: 'data', type: 'dir' },
    { path: 'data/keep.txt', type: 'file', data: 'kept from layer 2\n' },
    { path: 'data/changed.txt', type: 'file', data: 'layer 2 version\n' },
    { path: 'data/chmod.txt', type: 'file', mode: 0o644, data: 'mode and owner change in layer 3\n' },
    { path: 'data/remove-me.txt', type: 'file', data: 'whited out in layer 3\n' },
    { path: 'data/readded.txt', type: 'file', data: 'layer 2, removed in 3\n' },
    { path: 'data/gone-dir', type: 'dir' },
    { path: 'data/gone-dir/a.txt', type: 'file', data: 'a\n' },
    { path: 'data/gone-dir/sub', type: 'dir' },
    { path: 'data/gone-dir/sub/b.txt', type: 'file', data: 'b\n' },
    { path: 'data/opaque', type: 'dir', mode: 0o750 },
    { path: 'data/opaque/lower-a.txt', type: 'file', data: 'hidden by the opaque dir in layer 3\n' },
    { path: 'data/opaque/lower-sub', type: 'dir' },
    { path: 'data/opaque/lower-sub/c.txt', type: 'file', data: 'c\n' },
    { path: 'data/file-to-dir', type: 'file', data: 'a file in layer 2\n' },
    { path: 'data/dir-to-file', type: 'dir' },
    { path: 'data/dir-to-file/inner.txt', type: 'file', data: 'inside a dir in layer 2\n' },
    { path: 'data/hardlink-src.txt', type: 'file', data: 'three names, one inode\n' },
    { path: 'data/hardlink-dst', type: 'hardlink', target: 'data/hardlink-src.txt' },
    { path: 'data/nested', type: 'dir' },
    { path: 'data/nested/hardlink-other', type: 'hardlink', target: 'data/hardlink-src.txt' },
    { path: 'data/symlink-rel', type: 'symlink', target: 'keep.txt' },
    { path: 'data/symlink-abs', type: 'symlink', target: '/etc/passwd' },
    { path: 'data/symlink-dangling', type: 'symlink', target: 'does-not-exist' },
    { path: 'data/symlink-dir', type: 'symlink', target: 'nested' },
    { path: 'data/fifo', type: 'fifo', mode: 0o640 },
    { path: 'data/setuid', type: 'file', mode: 0o4755, data: 'setuid\n' },
    { path: 'data/setgid', type: 'file', mode: 0o2755, data: 'setgid\n' },
    { path: 'data/sticky', type: 'dir', mode: 0o1777 },
    { path: 'data/mode-0000', type: 'file', mode: 0o000, data: 'nobody may read this\n' },
    { path: 'data/dir-0700', type: 'dir', mode: 0o700 },
    { path: 'data/dir-0700/secret', type: 'file', mode: 0o600, data: 'secret\n' },
    { path: 'data/owned-1000', type: 'file', uid: 1000, gid: 1000, uname: 'berth', gname: 'berth', data: 'owned by 1000:1000\n' },
    { path: 'data/owned-dir', type: 'dir', uid: 1000, gid: 65534 },
    { path: 'data/owned-big', type: 'file', uid: 3000000, gid: 3000001, data: 'ids beyond ustar octal fields\n' },
    { path: 'data/empty', type: 'file', data: '' },
    { path: 'data/xattr-user', type: 'file', data: 'has user xattrs\n', xattrs: { 'user.berth.text': 'hello', 'user.berth.bin': USER_XATTR_BINARY } },
    { path: 'data/xattr-dir', type: 'dir', xattrs: { 'user.berth.dir': 'on a directory' } },
    { path: 'data/capability', type: 'file', mode: 0o755, data: 'has a file capability\n', xattrs: { 'security.capability': NET_BIND_SERVICE_CAPABILITY } },
    { path: 'data/long', type: 'dir' },
    { path: LONG_NAME, type: 'file', data: 'a 160-character path\n' },
    { path: 'data/long-symlink', type: 'symlink', target: LONG_TARGET },
    { path: 'data/ünïcødé.txt', type: 'file', data: 'a UTF-8 name\n' },
  ];
  /** @type {TarEntry[]} */
  const change = [
    { path: 'data', type: 'dir' },
    { path: 'data/.wh.remove-me.txt', type: 'file', data: '' },
    { path: 'data/.wh.readded.txt', type: 'file', data: '' },
    { path: 'data/changed.txt', type: 'file', data: 'layer 3 version\n' },
    { path: 'data/chmod.txt', type: 'file', mode: 0o600, uid: 1000, gid: 1000, data: 'mode and owner change in layer 3\n' },
    { path: 'data/new-in-3.txt', type: 'file', data: 'added in layer 3\n' },
    { path: 'data/opaque', type: 'dir', mode: 0o755 },
    { path: 'data/opaque/.wh..wh..opq', type: 'file', data: '' },
    { path: 'data/opaque/upper.txt', type: 'file', data: 'the only entry left in the opaque dir\n' },
    { path: 'data/file-to-dir', type: 'dir' },
    { path: 'data/file-to-dir/inside.txt', type: 'file', data: 'a dir in layer 3\n' },
    { path: 'data/dir-to-file', type: 'file', data: 'a file in layer 3\n' },
  ];
  /** @type {TarEntry[]} */
  const back = [
    { path: 'data', type: 'dir' },
    { path: 'data/.wh.gone-dir', type: 'file', data: '' },
    { path: 'data/.wh.hardlink-dst', type: 'file', data: '' },
    { path: 'data/.wh.symlink-dangling', type: 'file', data: '' },
    { path: 'data/readded.txt', type: 'file', data: 're-added in layer 4\n' },
    { path: 'data/file-to-dir', type: 'file', data: 'a file again in layer 4\n' },
    { path: 'data/dir-to-file', type: 'dir' },
    { path: 'data/dir-to-file/again.txt', type: 'file', data: 'a dir again in layer 4\n' },
  ];
  return [populate, change, back];
}

/**
 * What the unpacked `layers` tree holds (paths relative to the rootfs), for tests of appliers.
 */
export const LAYERS_EXPECTED = Object.freeze({
  absent: ['data/remove-me.txt', 'data/gone-dir', 'data/hardlink-dst', 'data/symlink-dangling', 'data/opaque/lower-a.txt', 'data/opaque/lower-sub', 'data/dir-to-file/inner.txt'],
  files: {
    'data/keep.txt': 'kept from layer 2\n',
    'data/changed.txt': 'layer 3 version\n',
    'data/readded.txt': 're-added in layer 4\n',
    'data/file-to-dir': 'a file again in layer 4\n',
    'data/dir-to-file/again.txt': 'a dir again in layer 4\n',
    'data/opaque/upper.txt': 'the only entry left in the opaque dir\n',
    'data/empty': '',
  },
  opaqueDir: { path: 'data/opaque', entries: ['upper.txt'] },
  hardLinks: ['data/hardlink-src.txt', 'data/nested/hardlink-other'],
  symlinks: { 'data/symlink-rel': 'keep.txt', 'data/symlink-abs': '/etc/passwd', 'data/symlink-dir': 'nested', 'data/long-symlink': LONG_TARGET },
  modes: { 'data/setuid': 0o4755, 'data/setgid': 0o2755, 'data/sticky': 0o1777, 'data/mode-0000': 0o000, 'data/dir-0700': 0o700, 'data/chmod.txt': 0o600, 'data/opaque': 0o755 },
  owners: { 'data/owned-1000': [1000, 1000], 'data/owned-dir': [1000, 65534], 'data/owned-big': [3000000, 3000001], 'data/chmod.txt': [1000, 1000] },
  fifo: 'data/fifo',
  longName: LONG_NAME,
  xattrs: { 'data/xattr-user': { 'user.berth.text': Buffer.from('hello'), 'user.berth.bin': USER_XATTR_BINARY }, 'data/capability': { 'security.capability': NET_BIND_SERVICE_CAPABILITY } },
});

/**
 * `many`: `files` small files (1-4 KiB, half-compressible) spread over `layers` layers, 100 per directory.
 * @param {{ files?: number, layers?: number }} [options]
 * @returns {TarEntry[][]}
 */
export function manyFilesLayers({ files = 20_000, layers = 4 } = {}) {
  const perLayer = Math.ceil(files / layers);
  /** @type {TarEntry[][]} */
  const result = [];
  let n = 0;
  for (let l = 0; l < layers; l++) {
    /** @type {TarEntry[]} */
    const entries = [{ path: 'many', type: 'dir' }];
    const end = Math.min(files, n + perLayer);
    let dirName = '';
    for (; n < end; n++) {
      const d = `many/l${l}-d${String(Math.floor(n / 100)).padStart(3, '0')}`;
      if (d !== dirName) entries.push({ path: (dirName = d), type: 'dir' });
      const size = 1024 + ((n * 2654435761) % 3073);
      const half = seededBytes(`many-${n}`, Math.ceil(size / 4) * 2);
      const data = Buffer.from(half.toString('hex')).subarray(0, size); // hex: about 2x compressible, like text
      entries.push({ path: `${d}/f${String(n).padStart(5, '0')}`, type: 'file', data });
    }
    result.push(entries);
  }
  return result;
}

/**
 * `big`: `mib` MiB of incompressible bytes in 3 layers, as files of at most 16 MiB.
 * @param {{ mib?: number }} [options]
 * @returns {TarEntry[][]}
 */
export function bigLayers({ mib = 250 } = {}) {
  const MiB = 1024 * 1024;
  const shares = [0.4, 0.33, 0.27];
  return shares.map((share, l) => {
    /** @type {TarEntry[]} */
    const entries = [{ path: 'big', type: 'dir' }];
    let left = Math.round(mib * share * MiB);
    for (let f = 0; left > 0; f++) {
      const size = Math.min(16 * MiB, left);
      entries.push({ path: `big/layer${l}-${String(f).padStart(2, '0')}.bin`, type: 'file', data: seededBytes(`big-${l}-${f}`, size) });
      left -= size;
    }
    return entries;
  });
}

/**
 * A layer naming a platform (for `multi`'s non-host manifests).
 * @param {import('./layout.mjs').Platform} platform
 * @returns {TarEntry[]}
 */
export function platformLayer(platform) {
  const name = [platform.os, platform.architecture, platform.variant].filter(Boolean).join('/');
  return [
    { path: 'etc', type: 'dir' },
    { path: 'etc/berth-platform', type: 'file', data: `${name}\n` },
  ];
}
