import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { directoryRootFs, generateSpec } from '@berth/client';
import { unpackAny } from '@berth/api';
import { createRunContainer, runSpecOpts, runtimeOptionsOf, type RunOptions, type RunServices } from './run-ops.js';
import { PassThrough, Readable } from 'node:stream';
import { createProgram } from '../cli.js';
import { CliContext } from '../context.js';
import { parseMemory, parseSignal, separateCommandArgs } from './tasks.js';

describe('berth run flags', () => {
  it('signals by name, short name or number (ctr ParseSignal)', () => {
    expect(parseSignal('SIGKILL')).toBe(9);
    expect(parseSignal('kill')).toBe(9);
    expect(parseSignal('15')).toBe(15);
    expect(() => parseSignal('SIGNOPE')).toThrow(/invalid signal/);
    expect(() => parseSignal('0')).toThrow(/invalid signal/);
  });

  it('memory as bytes or with k/m/g', () => {
    expect(parseMemory('33554432')).toBe(33554432);
    expect(parseMemory('32m')).toBe(33554432);
    expect(parseMemory('1G')).toBe(1024 ** 3);
    expect(() => parseMemory('lots')).toThrow(/invalid memory limit/);
    expect(() => parseMemory('0')).toThrow(/invalid memory limit/);
  });

  it('runc options as ctr sends them: an Any of containerd.runc.v1.Options, binary_name as field 6', () => {
    const any = runtimeOptionsOf({ runcBinary: 'crun', runcSystemdCgroup: false });
    expect(any?.typeUrl).toBe('containerd.runc.v1.Options');
    expect([...(any?.value ?? [])]).toEqual([0x32, 4, ...Buffer.from('crun')]);
    expect(unpackAny<{ binary_name: string; root: string }>({ type_url: any!.typeUrl, value: any!.value })).toMatchObject({ binary_name: 'crun', root: '' });
    expect(runtimeOptionsOf({})?.value.length).toBe(0);
    expect(runtimeOptionsOf({ runtime: 'io.containerd.other.v1' })).toBeUndefined();
    expect(() => runtimeOptionsOf({ runtime: 'io.containerd.other.v1', runcBinary: 'crun' })).toThrow(/only supported for "io.containerd.runc.v2"/);
  });
});

describe('the spec of a run', () => {
  let root: string;
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'berth-run-spec-'));
    await mkdir(join(root, 'etc'));
    await writeFile(join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\nwww:x:33:33::/var/www:/bin/false\n');
    await writeFile(join(root, 'etc/group'), 'root:x:0:\nwww:x:33:\nlog:x:4:www\n');
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  const base: RunOptions = { image: 'img', id: 'c1', args: [], snapshotter: 'overlayfs' };
  const image = { env: ['PATH=/bin', 'LANG=C'], entrypoint: [], cmd: ['/bin/sh'], workingDir: '/w', user: '', labels: {}, stopSignal: '' };
  const spec = (o: Partial<RunOptions>) => generateSpec({ namespace: 'ns', id: 'c1', rootfs: directoryRootFs(root) }, ...runSpecOpts({ ...base, ...o }, image));

  it('takes the image config, then the command line (env overrides, command, cwd, tty, limits)', async () => {
    const s = await spec({ env: ['LANG=en', 'X=1'], args: ['echo', 'hi'], tty: true, memoryLimit: 1 << 20, cpus: 1.5, cwd: '/tmp', readOnly: true });
    expect(s.process?.env).toEqual(['PATH=/bin', 'LANG=en', 'X=1', 'TERM=xterm']);
    expect(s.process?.args).toEqual(['echo', 'hi']);
    expect(s.process?.cwd).toBe('/tmp');
    expect(s.process?.terminal).toBe(true);
    expect(s.linux?.resources?.memory?.limit).toBe(1 << 20);
    expect(s.linux?.resources?.cpu).toEqual({ quota: 150000, period: 100000 });
    expect(s.root?.readonly).toBe(true);
    expect(s.linux?.cgroupsPath).toBe('/ns/c1');
    expect(s.hostname).toBe('c1');
    expect(s.linux?.resources?.devices).toHaveLength(10);
  });

  it('the image command when none is given; --user names resolved in the rootfs with their groups', async () => {
    const s = await spec({ user: 'www', hostname: 'h' });
    expect(s.process?.args).toEqual(['/bin/sh']);
    expect(s.process?.cwd).toBe('/w');
    expect(s.process?.user).toEqual({ uid: 33, gid: 33, additionalGids: [33, 4] });
    expect(s.hostname).toBe('h');
    await expect(spec({ user: 'ghost' })).rejects.toMatchObject({ errdef: 'not-found' });
  });

  it('--mount specs are appended to the default mounts', async () => {
    const s = await spec({ mounts: ['type=bind,src=/srv,dst=/srv,options=rbind:ro'] });
    expect(s.mounts?.at(-1)).toEqual({ destination: '/srv', type: 'bind', source: '/srv', options: ['rbind', 'ro'] });
  });

  it('bad flags are refused before anything is created', async () => {
    const untouchable = new Proxy({} as RunServices, {
      get: (_t, key) => {
        throw new Error(`nothing may be called, got ${String(key)}`);
      },
    });
    await expect(createRunContainer(untouchable, { namespace: 'ns' }, { ...base, rm: true, detach: true })).rejects.toThrow(/--detach and --rm/);
    await expect(createRunContainer(untouchable, { namespace: 'ns' }, { ...base, mounts: ['src=/a'] })).rejects.toThrow(/destination/);
    await expect(createRunContainer(untouchable, { namespace: 'ns' }, { ...base, runtime: 'io.x.y.v1', runcBinary: 'crun' })).rejects.toThrow(/runc-binary/);
  });
});

describe('command lines of run and exec (ctr SkipArgReorder)', () => {
  const program = createProgram(new CliContext({ stdin: Readable.from([]), stdout: new PassThrough(), stderr: new PassThrough() }));
  it('puts -- before the command, skipping flags and their values', () => {
    expect(separateCommandArgs(program, ['run', '--rm', '--env', 'A=1', 'img', 'c1', 'sh', '-c', 'exit 3'])).toEqual(['run', '--rm', '--env', 'A=1', 'img', 'c1', '--', 'sh', '-c', 'exit 3']);
    expect(separateCommandArgs(program, ['-n', 'ns', 'run', '-t', 'img', 'c1', 'ls', '-t'])).toEqual(['-n', 'ns', 'run', '-t', 'img', 'c1', '--', 'ls', '-t']);
    expect(separateCommandArgs(program, ['t', 'exec', '--exec-id', 'e1', 'c1', 'echo', '-n', 'x'])).toEqual(['t', 'exec', '--exec-id', 'e1', 'c1', '--', 'echo', '-n', 'x']);
    expect(separateCommandArgs(program, ['run', 'img', 'c1', '--', 'x'])).toEqual(['run', 'img', 'c1', '--', 'x']);
    expect(separateCommandArgs(program, ['run', 'img', 'c1'])).toEqual(['run', 'img', 'c1']);
    expect(separateCommandArgs(program, ['images', 'ls', '-q'])).toEqual(['images', 'ls', '-q']);
    expect(separateCommandArgs(program, ['c', 'create', '--label', 'a=b', 'img', 'c1', 'sh', '-c', 'x'])).toEqual(['c', 'create', '--label', 'a=b', 'img', 'c1', '--', 'sh', '-c', 'x']);
  });
});
