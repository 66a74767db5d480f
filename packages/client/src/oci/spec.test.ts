import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  decodeSpec,
  defaultSpec,
  directoryRootFs,
  encodeSpec,
  generateSpec,
  MountedRootFs,
  parseGroup,
  parseImageRuntimeConfig,
  parseMountFlag,
  parsePasswd,
  parseSeccompProfile,
  readonlyMounts,
  replaceOrAppendEnv,
  resolveInRoot,
  withAdditionalGids,
  withCpus,
  withDefaultUnixDevices,
  withEnv,
  withHostname,
  withImageConfig,
  withMemoryLimit,
  withMounts,
  withProcessArgs,
  withRootfsReadonly,
  withSeccompProfile,
  withTTY,
  withUser,
  withUserId,
  withUsername,
  withoutMounts,
  type RootFs,
} from './index.js';

const ctx = { namespace: 'default', id: 'c1' };

describe('defaultSpec (containerd 1.6 populateDefaultUnixSpec)', () => {
  it('serialises like containerd: version, process, root, mounts, linux in Go field order', () => {
    const spec = defaultSpec({ namespace: 'ns1', id: 'web' });
    const json = JSON.parse(new TextDecoder().decode(encodeSpec(spec)));
    expect(Object.keys(json)).toEqual(['ociVersion', 'process', 'root', 'mounts', 'linux']);
    expect(json.ociVersion).toBe('1.0.2-dev');
    expect(json.process).toEqual({
      user: { uid: 0, gid: 0 },
      cwd: '/',
      capabilities: expect.any(Object),
      rlimits: [{ type: 'RLIMIT_NOFILE', hard: 1024, soft: 1024 }],
      noNewPrivileges: true,
    });
    expect(json.root).toEqual({ path: 'rootfs' });
    expect(json.linux.cgroupsPath).toBe('/ns1/web');
    expect(json.linux.namespaces).toEqual([{ type: 'pid' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }, { type: 'network' }]);
    expect(json.linux.resources).toEqual({ devices: [{ allow: false, access: 'rwm' }] });
  });

  it('has containerd 1.6 default capabilities in bounding, effective and permitted (no inheritable, no ambient)', () => {
    const caps = defaultSpec(ctx).process?.capabilities;
    const expected = [
      'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FSETID', 'CAP_FOWNER', 'CAP_MKNOD', 'CAP_NET_RAW', 'CAP_SETGID',
      'CAP_SETUID', 'CAP_SETFCAP', 'CAP_SETPCAP', 'CAP_NET_BIND_SERVICE', 'CAP_SYS_CHROOT', 'CAP_KILL', 'CAP_AUDIT_WRITE',
    ];
    expect(caps).toEqual({ bounding: expected, effective: expected, permitted: expected });
  });

  it('has containerd default mounts with their options, and the read-only cgroup mount', () => {
    const mounts = defaultSpec(ctx).mounts ?? [];
    expect(mounts.map((m) => m.destination)).toEqual(['/proc', '/dev', '/dev/pts', '/dev/shm', '/dev/mqueue', '/sys', '/run', '/sys/fs/cgroup']);
    const by = (d: string) => mounts.find((m) => m.destination === d);
    expect(by('/dev/pts')).toEqual({ destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'] });
    expect(by('/dev/shm')).toEqual({ destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] });
    expect(by('/sys')?.options).toContain('ro');
    expect(by('/sys/fs/cgroup')).toEqual({ destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['nosuid', 'noexec', 'nodev', 'relatime', 'ro'] });
  });

  it('masks and makes read-only the paths containerd does', () => {
    const linux = defaultSpec(ctx).linux;
    expect(linux?.maskedPaths).toEqual([
      '/proc/acpi', '/proc/asound', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list', '/proc/timer_stats',
      '/proc/sched_debug', '/sys/firmware', '/proc/scsi',
    ]);
    expect(linux?.readonlyPaths).toEqual(['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger']);
  });

  it('refuses a missing namespace or id, and a bad namespace', () => {
    expect(() => defaultSpec({ namespace: '', id: 'x' })).toThrow(/namespace/);
    expect(() => defaultSpec({ namespace: 'ns', id: '' })).toThrow(/id/);
    expect(() => defaultSpec({ namespace: 'Bad Name', id: 'x' })).toThrow();
  });

  it('gives every spec its own arrays (options never leak into the next spec)', async () => {
    const a = await generateSpec(ctx, withMounts([{ destination: '/x', type: 'bind', source: '/tmp', options: ['rbind'] }]));
    a.process?.capabilities?.bounding?.push('CAP_SYS_ADMIN');
    const b = defaultSpec(ctx);
    expect(b.mounts).toHaveLength(8);
    expect(b.process?.capabilities?.bounding).not.toContain('CAP_SYS_ADMIN');
  });

  it('round-trips through encode/decode and refuses what is not a spec', () => {
    const spec = defaultSpec(ctx);
    expect(decodeSpec(encodeSpec(spec))).toEqual(JSON.parse(JSON.stringify(spec)));
    expect(() => decodeSpec(new TextEncoder().encode('[1]'))).toThrow(/ociVersion/);
    expect(() => decodeSpec(new TextEncoder().encode('{'))).toThrow(/not valid JSON/);
  });
});

describe('options', () => {
  it('env: replaces by key, appends new keys, removes bare keys (replaceOrAppendEnvValues)', () => {
    expect(replaceOrAppendEnv(['A=1', 'B=2', 'C=3'], ['B=20', 'D=4', 'A', 'X'])).toEqual(['B=20', 'C=3', 'D=4']);
    expect(replaceOrAppendEnv([], ['K=v=w'])).toEqual(['K=v=w']);
  });

  it('image config: env defaults, entrypoint + cmd, args replace cmd, cwd, and user env wins', async () => {
    const config = { env: ['PATH=/bin', 'HOME=/root'], entrypoint: ['/bin/sh', '-c'], cmd: ['echo hi'], workingDir: '/srv' };
    const spec = await generateSpec({ ...ctx, rootfs: emptyRootFs }, withEnv(['HOME=/home/me', 'EXTRA=1']), withImageConfig(config));
    expect(spec.process?.env).toEqual(['PATH=/bin', 'HOME=/home/me', 'EXTRA=1']);
    expect(spec.process?.args).toEqual(['/bin/sh', '-c', 'echo hi']);
    expect(spec.process?.cwd).toBe('/srv');
    const withArgs = await generateSpec({ ...ctx, rootfs: emptyRootFs }, withImageConfig(config, ['date']));
    expect(withArgs.process?.args).toEqual(['/bin/sh', '-c', 'date']);
    const bare = await generateSpec({ ...ctx, rootfs: emptyRootFs }, withImageConfig({}));
    expect(bare.process?.env).toEqual(['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin']);
    expect(bare.process?.cwd).toBe('/');
    // No passwd or group files: root with its own gid as the only additional group.
    expect(bare.process?.user).toEqual({ uid: 0, gid: 0, additionalGids: [0] });
  });

  it('process args replace the command; tty sets terminal and TERM', async () => {
    const spec = await generateSpec(ctx, withProcessArgs('/bin/echo', 'hello'), withTTY);
    expect(spec.process?.args).toEqual(['/bin/echo', 'hello']);
    expect(spec.process?.terminal).toBe(true);
    expect(spec.process?.env).toEqual(['TERM=xterm']);
  });

  it('mounts, read-only root, memory, cpus, hostname, default devices', async () => {
    const spec = await generateSpec(
      ctx,
      withoutMounts('/run'),
      withMounts([parseMountFlag('type=bind,src=/tmp,dst=/data,options=rbind:ro')]),
      withRootfsReadonly,
      withMemoryLimit(33554432),
      withCpus(0.5),
      withHostname('box'),
      withDefaultUnixDevices,
    );
    expect(spec.mounts?.map((m) => m.destination)).not.toContain('/run');
    expect(spec.mounts?.at(-1)).toEqual({ destination: '/data', type: 'bind', source: '/tmp', options: ['rbind', 'ro'] });
    expect(spec.root).toEqual({ path: 'rootfs', readonly: true });
    expect(spec.linux?.resources?.memory).toEqual({ limit: 33554432 });
    expect(spec.linux?.resources?.cpu).toEqual({ quota: 50000, period: 100000 });
    expect(spec.hostname).toBe('box');
    const devices = spec.linux?.resources?.devices ?? [];
    expect(devices[0]).toEqual({ allow: false, access: 'rwm' });
    expect(devices).toContainEqual({ allow: true, type: 'c', major: 1, minor: 3, access: 'rwm' });
    expect(devices).toContainEqual({ allow: true, type: 'c', major: 136, access: 'rwm' });
    expect(devices).toHaveLength(10);
  });

  it('refuses bad limits and mount flags with clear errors', () => {
    expect(() => withMemoryLimit(0)).toThrow(/memory limit/);
    expect(() => withCpus(-1)).toThrow(/cpus/);
    expect(() => parseMountFlag('type=bind,src=/a')).toThrow(/destination/);
    expect(() => parseMountFlag('type=bind,foo=1,dst=/a')).toThrow(/"foo" not supported/);
    expect(() => parseMountFlag('bind')).toThrow(/key=val/);
    expect(parseMountFlag('"type=bind","src=/a,b",dst=/c')).toEqual({ destination: '/c', type: 'bind', source: '/a,b' });
  });

  it('image config blobs: the runtime part is read, bad types are refused', () => {
    const blob = new TextEncoder().encode(JSON.stringify({ architecture: 'amd64', config: { User: 'app', Env: ['A=1'], Cmd: ['sh'], Labels: { k: 'v' }, StopSignal: 'SIGINT' } }));
    expect(parseImageRuntimeConfig(blob)).toEqual({ user: 'app', env: ['A=1'], cmd: ['sh'], labels: { k: 'v' }, stopSignal: 'SIGINT' });
    expect(parseImageRuntimeConfig(new TextEncoder().encode('{"architecture":"amd64"}'))).toEqual({});
    expect(() => parseImageRuntimeConfig(new TextEncoder().encode('{"config":{"Cmd":"sh"}}'))).toThrow(/Cmd must be an array/);
  });

  it('seccomp: a profile file becomes linux.seccomp, unknown keys dropped, bad ones refused', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'berth-seccomp-'));
    try {
      const file = join(dir, 'profile.json');
      await writeFile(file, JSON.stringify({ defaultAction: 'SCMP_ACT_ERRNO', archMap: [{}], syscalls: [{ names: ['read', 'write'], action: 'SCMP_ACT_ALLOW' }] }));
      const spec = await generateSpec(ctx, withSeccompProfile(file));
      expect(spec.linux?.seccomp).toEqual({ defaultAction: 'SCMP_ACT_ERRNO', syscalls: [{ names: ['read', 'write'], action: 'SCMP_ACT_ALLOW' }] });
      await expect(generateSpec(ctx, withSeccompProfile(join(dir, 'missing.json')))).rejects.toThrow(/cannot load seccomp profile/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    const enc = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));
    expect(() => parseSeccompProfile(enc({ syscalls: [] }))).toThrow(/defaultAction/);
    expect(() => parseSeccompProfile(enc({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: 'read', action: 'x' }] }))).toThrow(/syscalls\[0\]/);
    expect(() => parseSeccompProfile(new TextEncoder().encode('nope'))).toThrow(/decoding/);
  });
});

const emptyRootFs: RootFs = { readFile: () => Promise.resolve(undefined) };

describe('users and groups (WithUser, WithUserID, WithUsername, WithAdditionalGIDs)', () => {
  let root: string;
  let outside: string;
  const PASSWD = ['root:x:0:0:root:/root:/bin/sh', '', 'daemon:x:1:1::/:/bin/false', 'app:x:1000:1001:App:/home/app:/bin/sh', 'broken:x:abc'].join('\n');
  const GROUP = ['root:x:0:', '# comment', 'wheel:x:10:root,app', 'app:x:1001:app', 'audio:x:29:app,daemon', 'staff:x:50:'].join('\n');

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'berth-rootfs-test-'));
    outside = await mkdtemp(join(tmpdir(), 'berth-outside-'));
    await mkdir(join(root, 'etc'));
    await writeFile(join(root, 'etc/passwd'), PASSWD);
    await writeFile(join(root, 'etc/group'), GROUP);
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
    await rm(outside, { recursive: true, force: true });
  });

  it('parses as runc: blank lines skipped, short lines padded, bad numbers are 0, # only skipped in group', () => {
    expect(parsePasswd(PASSWD).map((u) => [u.name, u.uid, u.gid])).toEqual([['root', 0, 0], ['daemon', 1, 1], ['app', 1000, 1001], ['broken', 0, 0]]);
    expect(parseGroup(GROUP).find((g) => g.name === 'wheel')).toEqual({ name: 'wheel', gid: 10, members: ['root', 'app'] });
    expect(parseGroup(GROUP).map((g) => g.name)).not.toContain('# comment');
  });

  const run = (...opts: Parameters<typeof generateSpec>[1][]) => generateSpec({ ...ctx, rootfs: directoryRootFs(root) }, ...opts);

  it('a name: uid and gid from passwd, primary gid first among additional gids', async () => {
    expect((await run(withUser('app'))).process?.user).toEqual({ uid: 1000, gid: 1001, additionalGids: [1001] });
  });

  it('a uid: the gid from its entry; an unknown uid gets gid 0', async () => {
    expect((await run(withUserId(1))).process?.user).toEqual({ uid: 1, gid: 1, additionalGids: [1] });
    expect((await run(withUser('4242'))).process?.user).toEqual({ uid: 4242, gid: 0, additionalGids: [0] });
  });

  it('user:group forms resolve each side; unknown names are NotFound', async () => {
    expect((await run(withUser('app:wheel'))).process?.user).toEqual({ uid: 1000, gid: 10, additionalGids: [10] });
    expect((await run(withUser('7:8'))).process?.user).toEqual({ uid: 7, gid: 8, additionalGids: [8] });
    expect((await run(withUser('0:audio'))).process?.user).toEqual({ uid: 0, gid: 29, additionalGids: [29] });
    await expect(run(withUser('nobody'))).rejects.toMatchObject({ errdef: 'not-found', message: expect.stringContaining('nobody') });
    await expect(run(withUser('app:nogroup'))).rejects.toMatchObject({ errdef: 'not-found', message: expect.stringContaining('nogroup') });
    await expect(run(withUser('a:b:c'))).rejects.toThrow(/invalid USER value/);
    await expect(run(withUsername('x'))).rejects.toThrow(/not in the image's \/etc\/passwd/);
  });

  it('additional gids: groups listing the user, not its own-named group, primary first', async () => {
    const spec = await run(withUser('app'), withAdditionalGids('1000'));
    expect(spec.process?.user).toEqual({ uid: 1000, gid: 1001, additionalGids: [1001, 10, 29] });
    const rootSpec = await run(withAdditionalGids('root'));
    expect(rootSpec.process?.user.additionalGids).toEqual([0, 10]);
  });

  it('image config user goes through the rootfs, with the additional groups', async () => {
    const spec = await run(withImageConfig({ user: 'app', cmd: ['id'] }));
    expect(spec.process?.user).toEqual({ uid: 1000, gid: 1001, additionalGids: [1001, 10, 29] });
    expect(spec.process?.args).toEqual(['id']);
  });

  it('symlinks resolve inside the root: an absolute link to /etc/passwd elsewhere stays in the rootfs', async () => {
    await writeFile(join(outside, 'passwd'), 'evil:x:666:666::/:/bin/sh\n');
    await rm(join(root, 'etc/passwd'));
    await mkdir(join(root, 'real'));
    await writeFile(join(root, 'real/passwd'), 'app:x:1234:1234::/:/bin/sh\n');
    await symlink('/real/passwd', join(root, 'etc/passwd'));
    expect((await run(withUser('app'))).process?.user.uid).toBe(1234);
    await rm(join(root, 'etc/passwd'));
    await symlink(`../../../../../../../..${outside}/passwd`, join(root, 'etc/passwd'));
    expect(await resolveInRoot(root, '/etc/passwd')).toBe(join(root, outside, 'passwd'));
    await expect(run(withUser('evil'))).rejects.toMatchObject({ errdef: 'not-found' });
  });

  it('a symlink loop is refused, not followed forever', async () => {
    await rm(join(root, 'etc/passwd'));
    await symlink('/etc/passwd', join(root, 'etc/passwd'));
    await expect(run(withUser('app'))).rejects.toThrow(/too many symlinks/);
  });

  it('without a rootfs, an absolute root.path is read; a relative one is refused', async () => {
    const spec = defaultSpec(ctx);
    spec.root = { path: root };
    expect((await generateSpec({ ...ctx }, (s) => void Object.assign(s, { root: { path: root } }), withUser('app'))).process?.user.uid).toBe(1000);
    await expect(generateSpec(ctx, withUser('app'))).rejects.toThrow(/rootfs absolute path is required/);
  });
});

describe('MountedRootFs', () => {
  it('mounts read-only once on first read, unmounts and removes its directory on close', async () => {
    const calls: string[] = [];
    let mountedAt = '';
    let source = '';
    const mounter = {
      async mountAll(mounts: readonly { type: string; source: string; options: readonly string[] }[], target: string) {
        calls.push(`mount ${mounts[0]?.type} ${mounts[0]?.options.join(',')}`);
        mountedAt = target;
        await mkdir(join(target, 'etc'), { recursive: true });
        await writeFile(join(target, 'etc/passwd'), await import('node:fs/promises').then((fs) => fs.readFile(join(source, 'passwd'))));
      },
      async unmountAll(target: string) {
        calls.push('unmount');
        await rm(join(target, 'etc'), { recursive: true, force: true });
      },
    };
    source = await mkdtemp(join(tmpdir(), 'berth-src-'));
    try {
      await writeFile(join(source, 'passwd'), 'app:x:5:6::/:/bin/sh\n');
      const rootfs = new MountedRootFs([{ type: 'overlay', source: 'overlay', options: ['lowerdir=/a'] }], mounter);
      const spec = await generateSpec({ ...ctx, rootfs }, withUser('app'), withAdditionalGids('app'));
      expect(spec.process?.user).toEqual({ uid: 5, gid: 6, additionalGids: [6] });
      await rootfs.close();
      await rootfs.close();
      expect(calls).toEqual(['mount overlay lowerdir=/a,ro', 'unmount']);
      await expect(import('node:fs/promises').then((fs) => fs.stat(mountedAt))).rejects.toMatchObject({ code: 'ENOENT' });
    } finally {
      await rm(source, { recursive: true, force: true });
    }
  });

  it('a failed mount leaves no directory and close still works', async () => {
    let target = '';
    const rootfs = new MountedRootFs([{ type: 'bind', source: '/nonexistent', options: ['rbind'] }], {
      mountAll: (_m, t) => {
        target = t;
        return Promise.reject(new Error('mount failed'));
      },
      unmountAll: () => Promise.reject(new Error('must not be called')),
    });
    await expect(rootfs.readFile('/etc/passwd')).rejects.toThrow('mount failed');
    await rootfs.close();
    await expect(import('node:fs/promises').then((fs) => fs.stat(target))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('only a single overlay gets ro added (tryReadonlyMounts)', () => {
    expect(readonlyMounts([{ type: 'overlay', source: 'overlay', options: ['a'] }])[0]?.options).toEqual(['a', 'ro']);
    expect(readonlyMounts([{ type: 'bind', source: '/x', options: ['rbind'] }])[0]?.options).toEqual(['rbind']);
  });
});
