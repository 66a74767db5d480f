import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expectFailure } from '@berth/core/testing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { deleteArgs, resolveShimBinary, runShim, shimBinaryName, shimEnv, socketPathOf, startArgs, type ShimCommand } from './shim-binary.js';

describe('shim binary names (containerd-shim-%s-%s)', () => {
  it.each([
    ['io.containerd.runc.v2', 'containerd-shim-runc-v2'],
    ['io.containerd.runc.v1', 'containerd-shim-runc-v1'],
    ['io.containerd.kata.v2', 'containerd-shim-kata-v2'],
    ['com.example.fancy.v7', 'containerd-shim-fancy-v7'],
    ['runsc.v1', 'containerd-shim-runsc-v1'],
  ])('%s -> %s', (runtime, binary) => {
    expect(shimBinaryName(runtime)).toBe(binary);
  });

  it.each(['', 'runc', 'io.containerd.runc.', 'io.containerd..v2', 'io.containerd.a/b.v2'])('%j names no binary', (runtime) => {
    expect(shimBinaryName(runtime)).toBeUndefined();
  });
});

describe('resolveShimBinary', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'berth-shimbin-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('looks the name up on PATH, skipping directories that lack it and files that are not executable', async () => {
    const [a, b, c] = [join(dir, 'a'), join(dir, 'b'), join(dir, 'c')];
    await Promise.all([mkdir(a), mkdir(b), mkdir(c)]);
    await writeFile(join(b, 'containerd-shim-fancy-v1'), '#!/bin/sh\n', { mode: 0o644 }); // not executable
    await writeFile(join(c, 'containerd-shim-fancy-v1'), '#!/bin/sh\n', { mode: 0o755 });
    expect(await resolveShimBinary('io.containerd.fancy.v1', [a, 'relative/dir', b, c].join(':'))).toBe(join(c, 'containerd-shim-fancy-v1'));
  });

  it('takes an absolute path as it is, and refuses one that is missing or not executable', async () => {
    const shim = join(dir, 'my-shim');
    await writeFile(shim, '#!/bin/sh\n', { mode: 0o755 });
    expect(await resolveShimBinary(shim, '')).toBe(shim);
    await chmod(shim, 0o644);
    await expectFailure(resolveShimBinary(shim, ''), 'not-found', shim);
    await expectFailure(resolveShimBinary(join(dir, 'missing'), ''), 'not-found', 'missing');
  });

  it('says which binary is missing, and refuses a name that maps to none', async () => {
    await expectFailure(resolveShimBinary('io.containerd.nosuch.v9', dir), 'not-found', 'containerd-shim-nosuch-v9');
    await expectFailure(resolveShimBinary('runc', dir), 'invalid-argument', 'io.containerd.runc.v2');
    await expectFailure(resolveShimBinary('', dir), 'invalid-argument', 'no runtime name');
  });

  it('finds Debian\'s containerd-shim-runc-v2 on the default PATH', async () => {
    const found = await resolveShimBinary('io.containerd.runc.v2', '/usr/local/bin:/usr/bin:/bin').catch(() => undefined);
    if (found === undefined) return; // not installed here: the PATH test above covers the lookup
    expect(found).toMatch(/\/containerd-shim-runc-v2$/);
  });
});

describe('shim command line and environment (containerd runtime/v2/shim/util.go)', () => {
  const cmd: ShimCommand = {
    binary: '/usr/bin/containerd-shim-runc-v2',
    namespace: 'ns1',
    id: 'c1',
    grpcAddress: '/run/berth/berth.sock',
    ttrpcAddress: '/run/berth/berth.sock.ttrpc',
    publishBinary: '/usr/bin/berthd',
    bundle: '/var/state/io.containerd.runtime.v2.task/ns1/c1',
  };

  it('start: -namespace -address -publish-binary -id [-debug] start', () => {
    expect(startArgs(cmd)).toEqual(['-namespace', 'ns1', '-address', '/run/berth/berth.sock', '-publish-binary', '/usr/bin/berthd', '-id', 'c1', 'start']);
    expect(startArgs({ ...cmd, debug: true }).slice(-2)).toEqual(['-debug', 'start']);
  });

  it('delete names the bundle', () => {
    expect(deleteArgs(cmd)).toEqual([
      '-namespace', 'ns1', '-address', '/run/berth/berth.sock', '-publish-binary', '/usr/bin/berthd', '-id', 'c1',
      '-bundle', '/var/state/io.containerd.runtime.v2.task/ns1/c1', 'delete',
    ]);
  });

  it('the environment is berthd\'s plus GOMAXPROCS=2 and TTRPC_ADDRESS', () => {
    const env = shimEnv(cmd, { PATH: '/bin', GOMAXPROCS: '8', HOME: '/root' });
    expect(env).toEqual({ PATH: '/bin', HOME: '/root', GOMAXPROCS: '2', TTRPC_ADDRESS: '/run/berth/berth.sock.ttrpc' });
  });

  it('addresses', () => {
    expect(socketPathOf('unix:///run/containerd/s/abc\n')).toBe('/run/containerd/s/abc');
    expect(socketPathOf('/tmp/x.sock')).toBe('/tmp/x.sock');
    expect(() => socketPathOf('tcp://1.2.3.4:5')).toThrow(/not a unix socket/);
  });
});

describe('runShim', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'berth-runshim-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  const fake = async (script: string): Promise<ShimCommand> => {
    const binary = join(dir, 'fake-shim');
    await writeFile(binary, `#!/bin/sh\n${script}\n`, { mode: 0o755 });
    return { binary, namespace: 'n', id: 'i', grpcAddress: '/g', ttrpcAddress: '/g.ttrpc', publishBinary: '/p', bundle: dir };
  };

  it('runs in the bundle with the args, the env and stdin, which it closes', async () => {
    const cmd = await fake('echo "$PWD|$TTRPC_ADDRESS|$GOMAXPROCS|$*"; cat');
    const r = await runShim(cmd, startArgs(cmd), Buffer.from('OPTS'), 10_000);
    expect(r.code).toBe(0);
    expect(r.stdout.toString()).toBe(`${dir}|/g.ttrpc|2|-namespace n -address /g -publish-binary /p -id i start\nOPTS`);
  });

  it('kills a binary that does not finish and fails with DeadlineExceeded', async () => {
    const cmd = await fake('sleep 30');
    const started = Date.now();
    await expectFailure(runShim(cmd, ['start'], undefined, 300), 'deadline-exceeded', 'did not finish within 300 ms');
    expect(Date.now() - started).toBeLessThan(10_000);
  });
  it('kills the whole process group at the deadline, children included', async () => {
    const pidFile = join(dir, 'child.pid');
    const cmd = await fake(`sleep 30 & echo $! > ${pidFile}; wait`);
    await expectFailure(runShim(cmd, ['start'], undefined, 500), 'deadline-exceeded', 'did not finish within 500 ms');
    const pid = Number((await readFile(pidFile, 'utf8')).trim());
    expect(pid).toBeGreaterThan(0);
    const alive = () => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    };
    for (let i = 0; i < 100 && alive(); i++) await new Promise((r) => setTimeout(r, 50));
    expect(alive()).toBe(false);
  });

  it('says which binary could not run', async () => {
    const cmd = { ...(await fake('exit 0')), binary: join(dir, 'missing-shim') };
    await expectFailure(runShim(cmd, ['start'], undefined, 5000), 'unknown', `cannot run shim ${join(dir, 'missing-shim')} for n/i`);
  });

  it('does not block berthd\'s event loop to start the shim, however large berthd is (no fork of the whole process)', async () => {
    // Resident memory a fork would copy the page tables of: child_process.spawn blocks 100-200 ms here under load.
    const ballast = Array.from({ length: 256 }, () => Buffer.alloc(1 << 20, 1));
    const cmd = await fake('cat >/dev/null; echo unix:///run/x');
    let longest = 0;
    for (let i = 0; i < 10; i++) {
      const t0 = performance.now();
      const running = runShim(cmd, startArgs(cmd), Buffer.from('x'), 10_000); // its synchronous part is the block
      longest = Math.max(longest, performance.now() - t0);
      expect((await running).stdout.toString()).toBe('unix:///run/x\n');
    }
    expect(ballast.length).toBe(256);
    expect(longest).toBeLessThan(100); // stall detection with a generous bound, not a performance target
  });
});

describe('runtimeNameOf (the runtime a recovered task reports)', () => {
  it('maps containerd-shim-<name>-<version> back to io.containerd.<name>.<version>, other binaries to their path', async () => {
    const { runtimeNameOf } = await import('./shim-runtime.js');
    expect(runtimeNameOf('/usr/bin/containerd-shim-runc-v2')).toBe('io.containerd.runc.v2');
    expect(runtimeNameOf('/usr/bin/containerd-shim-runc-v1')).toBe('io.containerd.runc.v1');
    expect(runtimeNameOf('/opt/my-shim')).toBe('/opt/my-shim');
  });
});
