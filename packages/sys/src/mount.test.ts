import { mkdirSync, openSync, closeSync, readFileSync, readdirSync, writeFileSync, existsSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { resetBindingForTests, NO_FFI_ENV } from './binding.js';
import { MNT_DETACH, MS_BIND, MS_PRIVATE, MS_RDONLY, MS_REC, MS_REMOUNT, MS_NOSUID, MS_NODEV } from './constants.js';
import { compactLowerdir, mount, mountAll, mountToolArgs, parseMountOptions, umount2, unmountAll, MOUNT_DATA_MAX, type Mount } from './mount.js';
import { Scratch, mountsUnder, whyNoRoot } from './testing-fixtures/scratch.js';

describe('parseMountOptions', () => {
  it('splits flags from filesystem data, with containerd’s clear/set semantics', () => {
    expect(parseMountOptions(['ro', 'nosuid', 'lowerdir=/a:/b', 'upperdir=/u', 'defaults'])).toEqual({
      flags: MS_RDONLY | MS_NOSUID,
      data: 'lowerdir=/a:/b,upperdir=/u',
      loop: false,
    });
    expect(parseMountOptions(['ro', 'rw', 'rbind', 'nodev', 'dev'])).toEqual({ flags: MS_BIND | MS_REC, data: '', loop: false });
    expect(parseMountOptions(['rprivate', 'loop']).flags).toBe(MS_PRIVATE | MS_REC);
    expect(parseMountOptions(['loop']).loop).toBe(true);
    // Object prototype names are data, not flags.
    expect(parseMountOptions(['constructor', 'toString']).data).toBe('constructor,toString');
  });
});

describe('compactLowerdir', () => {
  it('makes lowerdirs relative to the parent of their common prefix', () => {
    const out = compactLowerdir(['workdir=/r/snapshots/3/work', 'lowerdir=/r/snapshots/2/fs:/r/snapshots/1/fs', 'index=off']);
    expect(out).toEqual({ cwd: '/r/snapshots/', options: ['workdir=/r/snapshots/3/work', 'index=off', 'lowerdir=2/fs:1/fs'] });
  });

  it('leaves one lowerdir, no common parent, or no lowerdir alone', () => {
    const one = ['lowerdir=/r/s/1/fs'];
    expect(compactLowerdir(one)).toEqual({ options: one });
    const apart = ['lowerdir=/a/1:/b/2'];
    expect(compactLowerdir(apart)).toEqual({ options: apart });
    expect(compactLowerdir(['ro'])).toEqual({ options: ['ro'] });
  });

  it('backs up to a directory boundary when the common prefix ends inside a name', () => {
    // /r/s/10/fs and /r/s/11/fs share "/r/s/1": the cwd must be /r/s/, not /r/s/1.
    expect(compactLowerdir(['lowerdir=/r/s/10/fs:/r/s/11/fs'])).toEqual({ cwd: '/r/s/', options: ['lowerdir=10/fs:11/fs'] });
  });
});

describe('mountToolArgs (the /bin/mount fallback)', () => {
  it('turns flags back into mount(8) words', () => {
    expect(mountToolArgs('overlay', '/t', 'overlay', MS_RDONLY | MS_NODEV, 'lowerdir=a:b')).toEqual([
      '--internal-only', '--no-mtab', '-o', 'nodev,ro,lowerdir=a:b', '-t', 'overlay', 'overlay', '/t',
    ]);
    expect(mountToolArgs('/src', '/t', '', MS_BIND | MS_REC, '')).toEqual(['--internal-only', '--no-mtab', '--rbind', '/src', '/t']);
    expect(mountToolArgs('', '/t', '', MS_REMOUNT | MS_BIND | MS_RDONLY, '')).toEqual([
      '--internal-only', '--no-mtab', '--bind', '-o', 'remount,ro', '/t',
    ]);
    expect(mountToolArgs('', '/t', '', MS_PRIVATE | MS_REC, '')).toEqual(['--internal-only', '--no-mtab', '--make-rprivate', '/t']);
  });
});

const noRoot = whyNoRoot();

describe.skipIf(noRoot !== undefined)(`mounts as root${noRoot ? ` (skipped: ${noRoot})` : ''}`, () => {
  let scratch: Scratch;
  beforeAll(async () => {
    scratch = await Scratch.create();
  });
  afterAll(async () => {
    await scratch?.dispose();
    expect(mountsUnder(scratch.dir)).toEqual([]);
  });
  afterEach(() => {
    delete process.env[NO_FFI_ENV];
    resetBindingForTests();
  });

  const dir = (name: string) => {
    const p = scratch.path(name);
    mkdirSync(p, { recursive: true });
    return p;
  };

  it('mounts a tmpfs with data, and unmounts it', async () => {
    const t = dir('tmpfs');
    await mount('tmpfs', t, 'tmpfs', MS_NOSUID, 'size=1m,mode=0700');
    const line = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').find((l) => l.split(' ')[4] === t);
    expect(line).toMatch(/\bnosuid\b/);
    expect(line).toMatch(/size=1024k/);
    expect(line).toMatch(/mode=700/);
    await umount2(t);
    expect(mountsUnder(t)).toEqual([]);
  });

  it('bind mounts, then remounts the bind read-only', async () => {
    const src = dir('bind-src');
    writeFileSync(`${src}/f`, 'hello');
    const t = dir('bind-target');
    await mount(src, t, '', MS_BIND);
    expect(readFileSync(`${t}/f`, 'utf8')).toBe('hello');
    writeFileSync(`${t}/g`, 'writable');
    await mount('', t, '', MS_REMOUNT | MS_BIND | MS_RDONLY);
    expect(() => writeFileSync(`${t}/h`, 'x')).toThrow(expect.objectContaining({ code: 'EROFS' }));
    expect(readFileSync(`${src}/g`, 'utf8')).toBe('writable');
    await umount2(t);
    // The source is still writable: only the bind was read-only.
    writeFileSync(`${src}/h`, 'x');
  });

  it('mountAll applies bind,ro as containerd does (bind, then a read-only remount)', async () => {
    const src = dir('all-src');
    const t = dir('all-target');
    await mountAll([{ type: 'bind', source: src, options: ['rbind', 'ro'] }], t);
    expect(() => writeFileSync(`${t}/x`, 'x')).toThrow(expect.objectContaining({ code: 'EROFS' }));
    await unmountAll(t);
    expect(mountsUnder(t)).toEqual([]);
  });

  const overlay = (name: string, layers: number) => {
    const base = dir(`${name}/snapshots`);
    const lowers: string[] = [];
    for (let i = 1; i <= layers; i++) {
      const fs = dir(`${name}/snapshots/${i}/fs`);
      writeFileSync(`${fs}/layer-${i}`, String(i));
      writeFileSync(`${fs}/top`, String(i));
      lowers.push(fs);
    }
    const upper = dir(`${name}/snapshots/${layers + 1}/fs`);
    const work = dir(`${name}/snapshots/${layers + 1}/work`);
    // Nearest parent first, as a snapshotter lists them.
    lowers.reverse();
    const m: Mount = { type: 'overlay', source: 'overlay', options: [`workdir=${work}`, `upperdir=${upper}`, `lowerdir=${lowers.join(':')}`] };
    return { base, upper, m, target: dir(`${name}/merged`) };
  };

  it('mounts an overlay with two lowers', async () => {
    const { m, target, upper } = overlay('ov2', 2);
    await mountAll([m], target);
    expect(readdirSync(target).sort()).toEqual(['layer-1', 'layer-2', 'top']);
    expect(readFileSync(`${target}/top`, 'utf8')).toBe('2');
    writeFileSync(`${target}/new`, 'n');
    expect(readFileSync(`${upper}/new`, 'utf8')).toBe('n');
    await umount2(target);
  });

  it('mounts an overlay with 150 lowers, whose options are longer than a page', async () => {
    const { m, target } = overlay('ov150', 150);
    const data = parseMountOptions(m.options).data;
    expect(data.length).toBeGreaterThan(MOUNT_DATA_MAX);
    // Uncompacted, the kernel cuts the data at a page, and a cut-off lowerdir does not exist.
    const err = await mount('overlay', target, 'overlay', 0, data).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ENOENT', syscall: 'mount', dest: target });
    await mountAll([m], target);
    const names = readdirSync(target);
    expect(names).toHaveLength(151);
    expect(readFileSync(`${target}/top`, 'utf8')).toBe('150');
    expect(readFileSync(`${target}/layer-1`, 'utf8')).toBe('1');
    await umount2(target);
  });

  it('refuses options that stay over a page even when compacted, with E2BIG and the paths', async () => {
    const t = dir('too-long');
    const lower = Array.from({ length: 400 }, (_, i) => `/nowhere-${i}/${'x'.repeat(10)}`).join(':');
    await expect(mountAll([{ type: 'overlay', source: 'overlay', options: [`lowerdir=${lower}`] }], t)).rejects.toMatchObject({
      code: 'E2BIG',
      syscall: 'mount',
      message: expect.stringContaining(t),
    });
  });

  it('detaches a busy mount with MNT_DETACH', async () => {
    const t = dir('busy');
    await mount('tmpfs', t, 'tmpfs');
    writeFileSync(`${t}/f`, 'x');
    const fd = openSync(`${t}/f`, 'r');
    try {
      await expect(umount2(t)).rejects.toMatchObject({ code: 'EBUSY', syscall: 'umount2', path: t });
      await umount2(t, MNT_DETACH);
      expect(mountsUnder(t)).toEqual([]);
      expect(existsSync(`${t}/f`)).toBe(false);
    } finally {
      closeSync(fd);
    }
  });

  it('reports errors with errno names and paths, and unmountAll treats "not mounted" as done', async () => {
    const missing = scratch.path('no-such-dir');
    const err = await mount('tmpfs', missing, 'tmpfs').catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ENOENT', errno: -2, syscall: 'mount', dest: missing });
    expect((err as Error).message).toBe(`ENOENT: no such file or directory, mount 'tmpfs' -> '${missing}'`);
    await expect(mount('x', dir('badfs'), 'no-such-fs')).rejects.toMatchObject({ code: 'ENODEV' });
    await expect(umount2(dir('not-a-mount'))).rejects.toMatchObject({ code: 'EINVAL', path: scratch.path('not-a-mount') });
    await unmountAll(scratch.path('not-a-mount'));
    await unmountAll(missing);
  });

  it('mountAll unmounts what it mounted when a later mount fails', async () => {
    const t = dir('partial');
    const bad: Mount = { type: 'no-such-fs', source: 'x', options: [] };
    await expect(mountAll([{ type: 'tmpfs', source: 'tmpfs', options: [] }, bad], t)).rejects.toMatchObject({ code: 'ENODEV' });
    expect(mountsUnder(t)).toEqual([]);
  });

  describe(`without the FFI binding (${NO_FFI_ENV}=1: /bin/mount and /bin/umount)`, () => {
    const noFfi = () => {
      process.env[NO_FFI_ENV] = '1';
      resetBindingForTests();
    };

    it('mounts and unmounts a tmpfs and a read-only bind', async () => {
      noFfi();
      const t = dir('fb-tmpfs');
      await mount('tmpfs', t, 'tmpfs', MS_NOSUID, 'size=1m');
      expect(readFileSync('/proc/self/mountinfo', 'utf8')).toContain(` ${t} `);
      await umount2(t);
      expect(mountsUnder(t)).toEqual([]);
      const src = dir('fb-src');
      const b = dir('fb-bind');
      await mountAll([{ type: 'bind', source: src, options: ['bind', 'ro'] }], b);
      expect(() => writeFileSync(`${b}/x`, 'x')).toThrow(expect.objectContaining({ code: 'EROFS' }));
      await umount2(b, MNT_DETACH);
      expect(mountsUnder(b)).toEqual([]);
    });

    it('mounts 150 overlay lowers too', async () => {
      noFfi();
      const { m, target } = overlay('fb-ov150', 150);
      await mountAll([m], target);
      expect(readdirSync(target)).toHaveLength(151);
      await umount2(target);
    });

    it('recovers errno names from the tools’ messages', async () => {
      noFfi();
      const missing = scratch.path('fb-missing');
      await expect(mount('tmpfs', missing, 'tmpfs')).rejects.toMatchObject({ code: 'ENOENT', syscall: 'mount', dest: missing });
      await expect(umount2(dir('fb-not-mounted'))).rejects.toMatchObject({ code: 'EINVAL', syscall: 'umount2' });
    });
  });
});
