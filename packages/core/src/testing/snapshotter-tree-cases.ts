/**
 * The cases of the snapshotter suite that mount snapshots and check the trees on disk (containerd's
 * snapshots/testsuite: Basic, the layer cases of issues.go, ViewReadonly, RootPermission, 128LayersMount), plus the
 * special files and metadata a copy-based snapshotter could lose.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { expect } from 'vitest';
import { expectFailure } from './helpers.js';
import {
  chmodPath,
  chownPath,
  createCharDevice,
  createDir,
  createFifo,
  createFile,
  hardlink,
  ops,
  removeAll,
  renamePath,
  setTimes,
  setXattr,
  symlinkTo,
  type TreeOp,
} from './fstest.js';
import type { CaseEnv, SnapshotterCase } from './snapshotter-env.js';

async function basic(env: CaseEnv): Promise<void> {
  const { sn, ctx } = env;
  const initial = ops(createFile('/foo', 'foo\n', 0o777), createDir('/a'), createDir('/a/b'), createDir('/a/b/c'));
  const diff = ops(createFile('/bar', 'bar\n', 0o777), createFile('/foo', 'bar\n', 0o777), removeAll('/a/b'));
  const flat = await env.dir('flat');
  const [preparing, committed, next, nextCommitted, view] = ['preparing', 'committed', 'next', 'committed-next', 'view'].map((n) => env.key(n)) as [string, string, string, string, string];

  await env.apply(await sn.prepare(ctx, preparing, '', env.opt), initial);
  await sn.commit(ctx, committed, preparing, env.opt);
  const si = await sn.stat(ctx, committed);
  expect(si).toMatchObject({ name: committed, parent: '', kind: 'committed' });
  await expectFailure(sn.stat(ctx, preparing), 'not-found');

  await initial(flat, env.sys);
  const m = await env.mount(await sn.prepare(ctx, next, committed, env.opt));
  try {
    await env.expectTree(m.path, flat);
    await diff(m.path, env.sys);
  } finally {
    await m.unmount();
  }
  await diff(flat, env.sys);
  expect(await sn.stat(ctx, next)).toMatchObject({ name: next, parent: committed, kind: 'active' });
  await sn.commit(ctx, nextCommitted, next, env.opt);
  const si2 = await sn.stat(ctx, nextCommitted);
  expect(si2).toMatchObject({ name: nextCommitted, parent: committed, kind: 'committed' });
  await expectFailure(sn.stat(ctx, next), 'not-found');

  const walked = new Map<string, unknown>();
  for await (const info of sn.walk(ctx)) walked.set(info.name, info);
  expect(walked.get(committed)).toEqual(si);
  expect(walked.get(nextCommitted)).toEqual(si2);

  await env.withMount(await sn.view(ctx, view, nextCommitted, env.opt), (dir) => env.expectTree(dir, flat));
  await sn.remove(ctx, view);
  await expectFailure(sn.remove(ctx, committed), 'failed-precondition');
  await sn.remove(ctx, nextCommitted);
  await sn.remove(ctx, committed);
  await expectFailure(sn.stat(ctx, committed), 'not-found');
}

/** Given A <- B <- ... the parents are as prepared, and the top sees the last write of every layer. */
async function transitivity(env: CaseEnv): Promise<void> {
  const { sn, ctx } = env;
  const names: string[] = [];
  for (let i = 0; i < 5; i++) {
    const name = env.key(`snap-${i}`);
    await env.apply(await sn.prepare(ctx, `${name}-active`, names.at(-1) ?? '', env.opt), ops(createFile('/foo', `layer ${i}\n`), createFile(`/only-${i}`, `${i}`)));
    await sn.commit(ctx, name, `${name}-active`, env.opt);
    names.push(name);
  }
  let at = names.at(-1)!;
  const chain: string[] = [];
  while (at !== '') {
    chain.push(at);
    at = (await sn.stat(ctx, at)).parent;
  }
  expect(chain).toEqual([...names].reverse());
  await env.withMount(await sn.view(ctx, env.key('top'), names.at(-1)!, env.opt), async (dir) => {
    expect(await env.readText(dir, 'foo')).toBe('layer 4\n');
    for (let i = 0; i < 5; i++) expect(await env.readText(dir, `only-${i}`)).toBe(`${i}`);
  });
}

async function viewReadOnly(env: CaseEnv): Promise<void> {
  const { sn, ctx } = env;
  const committed = env.key('committed');
  await env.apply(await sn.prepare(ctx, env.key('preparing'), '', env.opt), createFile('/kept', 'as committed'));
  await sn.commit(ctx, committed, env.key('preparing'), env.opt);
  for (const [key, parent] of [[env.key('view'), committed], [env.key('empty-view'), '']] as const) {
    await env.withMount(await sn.view(ctx, key, parent, env.opt), async (dir) => {
      expect(await errnoOf(writeFile(join(dir, 'testfile'), 'testcontent')), `a write into the view of ${JSON.stringify(parent)}`).toBe('EROFS');
      expect(await errnoOf(mkdir(join(dir, 'newdir'))), 'a mkdir in the view').toBe('EROFS');
      if (parent !== '') expect(await errnoOf(writeFile(join(dir, 'kept'), 'changed')), 'a write over a file of the view').toBe('EROFS');
    });
    await sn.remove(ctx, key);
  }
  await env.withMount(await sn.view(ctx, env.key('again'), committed, env.opt), async (dir) => {
    expect(await env.readText(dir, 'kept')).toBe('as committed');
  });
}

/** The errno code a filesystem call failed with ('resolved' when it did not fail). */
async function errnoOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'resolved';
  } catch (err) {
    return String((err as NodeJS.ErrnoException).code);
  }
}

async function rootPermission(env: CaseEnv): Promise<void> {
  const { sn, ctx } = env;
  await env.withMount(await sn.prepare(ctx, env.key('preparing'), '', env.opt), async (dir) => {
    expect(((await stat(dir)).mode & 0o7777).toString(8)).toBe('755');
  });
  await env.withMount(await sn.view(ctx, env.key('view'), '', env.opt), async (dir) => {
    expect(((await stat(dir)).mode & 0o7777).toString(8)).toBe('755');
  });
}

/** containerd's check128LayersMount: every layer is compared with a flat directory before and after its changes. */
async function layers128(env: CaseEnv): Promise<void> {
  const { sn, ctx } = env;
  const layers: TreeOp[] = [
    ops(
      createFile('/bottom', 'way at the bottom\n', 0o777),
      createFile('/overwriteme', 'FIRST!\n', 0o777),
      createDir('/ADDHERE'),
      createDir('/ONLYME'),
      createFile('/ONLYME/bottom', 'bye!\n', 0o777),
    ),
  ];
  for (let i = 1; i <= 127; i++) {
    layers.push(
      ops(
        createFile('/overwriteme', `${i} WAS HERE!\n`, 0o777),
        createFile(`/ADDHERE/file-${i}`, 'same\n', 0o755),
        removeAll('/ONLYME'),
        createDir('/ONLYME'),
        createFile(`/ONLYME/file-${i}`, 'only me!\n', 0o777),
      ),
    );
  }
  const flat = await env.dir('flat');
  let parent = '';
  for (const [i, layer] of layers.entries()) {
    const active = env.key(`prepare-layer-${i}`);
    const m = await env.mount(await sn.prepare(ctx, active, parent, env.opt));
    try {
      await env.expectTree(m.path, flat);
      await layer(flat, env.sys);
      await layer(m.path, env.sys);
      await env.expectTree(m.path, flat);
    } finally {
      await m.unmount();
    }
    parent = env.key(`committed-${i}`);
    await sn.commit(ctx, parent, active, env.opt);
  }
  await env.withMount(await sn.view(ctx, env.key('fullview'), parent, env.opt), (dir) => env.expectTree(dir, flat));
}

/**
 * What a copy-based snapshotter could lose, and what an image's root filesystem holds: hard links, symlinks (also
 * dangling and absolute), a fifo, a character device, setuid/setgid/sticky bits, owners other than root, binary
 * extended attributes and modification times (set last, directories after their entries). A child of the committed
 * layer, and a view of a second layer that changes some of them, must have them all exactly.
 */
async function specialFiles(env: CaseEnv): Promise<void> {
  const { sn, ctx } = env;
  const big = randomBytes(300 * 1024);
  const entries = [
    '/bin', '/bin/sh', '/bin/ls', '/usr', '/usr/bin', '/usr/bin/su', '/usr/bin/wall', '/tmp', '/home', '/home/user',
    '/home/user/.profile', '/link', '/abs', '/dev', '/dev/null', '/run', '/run/fifo', '/xattr', '/big', '/empty',
  ];
  // Deepest first, so that setting a directory's time comes after every change inside it.
  const times = (base: number, paths: readonly string[]) =>
    ops(...[...paths].sort((a, b) => b.split('/').length - a.split('/').length || a.localeCompare(b)).map((p, i) => setTimes(p, base + i)));
  const layer1 = ops(
    createDir('/bin'),
    createFile('/bin/sh', '#!/bin/true\n', 0o755),
    hardlink('/bin/sh', '/bin/ls'),
    createDir('/usr'),
    createDir('/usr/bin'),
    createFile('/usr/bin/su', 'su', 0o4755),
    createFile('/usr/bin/wall', 'wall', 0o2755),
    chownPath('/usr/bin/wall', 0, 5),
    chmodPath('/usr/bin/wall', 0o2755),
    createDir('/tmp', 0o1777),
    createDir('/home'),
    createDir('/home/user', 0o700),
    createFile('/home/user/.profile', 'PATH=/bin\n', 0o600),
    chownPath('/home/user/.profile', 1000, 1000),
    chownPath('/home/user', 1000, 1000),
    symlinkTo('bin/sh', '/link'),
    symlinkTo('/etc/hostname', '/abs'),
    createDir('/dev'),
    createCharDevice('/dev/null', 1, 3, 0o666),
    createDir('/run'),
    createFifo('/run/fifo', 0o600),
    createFile('/xattr', 'has attributes'),
    setXattr('/xattr', 'user.berth.binary', Buffer.from([0, 1, 2, 0xff, 0xfe])),
    setXattr('/xattr', 'trusted.berth.text', 'value'),
    createFile('/big', big),
    createFile('/empty', ''),
    times(1_600_000_000, entries),
  );
  const layer2 = ops(
    removeAll('/run/fifo'),
    removeAll('/link'),
    createDir('/link', 0o750),
    chownPath('/home/user', 2000, 2000),
    setXattr('/xattr', 'user.berth.binary', Buffer.from([9, 8, 7])),
    createFile('/usr/bin/new', 'new', 0o4711),
    times(1_700_000_000, ['/run', '/link', '/usr/bin/new', '/usr/bin', '/']),
  );
  const options = { xattrs: true, mtimes: true };
  const flat = await env.dir('flat');
  await layer1(flat, env.sys);
  const first = env.key('first');
  await env.apply(await sn.prepare(ctx, `${first}-active`, '', env.opt), layer1);
  await sn.commit(ctx, first, `${first}-active`, env.opt);
  await env.expectSnapshot(first, flat, options);

  const child = env.key('child');
  await env.withMount(await sn.prepare(ctx, child, first, env.opt), async (dir) => {
    await env.expectTree(dir, flat, options);
    await layer2(dir, env.sys);
    await layer2(flat, env.sys);
    await env.expectTree(dir, flat, options);
  });
  await sn.commit(ctx, env.key('second'), child, env.opt);
  await env.expectSnapshot(env.key('second'), flat, options);
}

// The layer cases of containerd's suite (issues.go and testsuite.go), each a chain checked after every commit.
const fileUpdate = [
  ops(createDir('/etc', 0o700), createFile('/etc/hosts', 'mydomain 10.0.0.1'), createFile('/etc/profile', 'PATH=/usr/bin')),
  ops(
    createFile('/etc/hosts', 'mydomain 10.0.0.2'),
    createFile('/etc/profile', 'PATH=/usr/bin', 0o666),
    createDir('/root', 0o700),
    createFile('/root/.bashrc', 'PATH=/usr/sbin:/usr/bin'),
  ),
];

export const treeCases: readonly SnapshotterCase[] = [
  { name: 'basic prepare, commit and view chain', run: basic },
  { name: 'transitivity over several layers', run: transitivity },
  {
    name: 'files deleted in a child',
    run: (env) =>
      env.checkLayers([ops(createFile('/foo', 'foo\n', 0o777), createFile('/foobar', 'foobar\n', 0o777)), removeAll('/foobar'), ops()]).then(() => undefined),
  },
  {
    name: 'a file updated in a layer',
    timeout: 60_000,
    async run(env) {
      // As containerd does, again across a second boundary, for filesystems whose times are whole seconds.
      for (let i = 0; i < 2; i++) {
        if (i > 0) await sleep(1000 - (Date.now() % 1000) + 10);
        await env.checkLayers(fileUpdate, {}, `round-${i}`);
      }
    },
  },
  {
    name: 'a removed directory from a lower layer',
    run: (env) =>
      env
        .checkLayers([
          ops(createDir('/lib', 0o700), createFile('/lib/hidden', '')),
          ops(removeAll('/lib'), createDir('/lib', 0o700), createFile('/lib/not-hidden', '')),
          createFile('/lib/newfile', ''),
        ])
        .then(() => undefined),
  },
  {
    name: 'chown',
    run: (env) =>
      env
        .checkLayers([
          ops(createDir('/opt', 0o700), createDir('/opt/a', 0o700), createDir('/opt/a/b', 0o700), createFile('/opt/a/b/file.txt', 'hello')),
          ops(chownPath('/opt', 1, 1), chownPath('/opt/a', 1, 1), chownPath('/opt/a/b', 1, 1), chownPath('/opt/a/b/file.txt', 1, 1)),
        ])
        .then(() => undefined),
  },
  {
    name: 'directory permissions kept on commit',
    run: (env) =>
      env
        .checkLayers([
          ops(
            createDir('/dir1', 0o700),
            createDir('/dir2', 0o700),
            createDir('/dir3', 0o700),
            createDir('/dir4', 0o700),
            createFile('/dir4/f1', '...'),
            createDir('/dir5', 0o700),
            createFile('/dir5/f1', '...'),
            chownPath('/dir1', 1, 1),
            chownPath('/dir2', 1, 1),
            chownPath('/dir3', 1, 1),
            chownPath('/dir5', 1, 1),
            chownPath('/dir5/f1', 1, 1),
          ),
          ops(chownPath('/dir2', 0, 0), removeAll('/dir3'), chownPath('/dir4', 1, 1), chownPath('/dir4/f1', 1, 1)),
          ops(createDir('/dir3', 0o700), chownPath('/dir3', 1, 1), removeAll('/dir5'), createDir('/dir5', 0o700), chownPath('/dir5', 1, 1)),
        ])
        .then(() => undefined),
  },
  {
    name: 'a file moved from a lower layer',
    run: (env) =>
      env
        .checkLayers([
          ops(createDir('/dir1', 0o700), createFile('/dir1/f1', 'Hello'), createDir('/dir2', 0o700), createFile('/dir2/f2', '...')),
          ops(createDir('/dir3', 0o700), createFile('/dir3/f1', 'Hello'), removeAll('/dir1'), hardlink('/dir2/f2', '/dir3/f2'), removeAll('/dir2/f2')),
        ])
        .then(() => undefined),
  },
  {
    // containerd's checkRename (which it skips on overlay, where renaming a lower directory fails with EXDEV unless
    // redirect_dir is on; renamePath then moves as mv does). A file renamed over one from below, a file renamed from
    // below, a directory from below renamed with its contents, a file moved out of a lower directory.
    name: 'renames over lower layers',
    run: (env) =>
      env
        .checkLayers([
          ops(
            createDir('/dir1', 0o700),
            createDir('/dir1/sub', 0o750),
            createFile('/dir1/sub/deep', 'deep'),
            createDir('/somefiles', 0o700),
            createFile('/somefiles/f1', 'was here first!'),
            createFile('/somefiles/f2', 'nothing interesting'),
            createFile('/somefiles/f4', 'moving out', 0o600),
          ),
          ops(
            renamePath('/dir1', '/dir2'),
            createFile('/somefiles/f1-overwrite', 'new content 1'),
            renamePath('/somefiles/f1-overwrite', '/somefiles/f1'),
            renamePath('/somefiles/f2', '/somefiles/f3'),
            renamePath('/somefiles/f4', '/dir2/f4'),
          ),
          ops(createDir('/dir1', 0o755), createFile('/dir1/again', 'a new dir1'), renamePath('/dir2/sub/deep', '/dir1/deep')),
        ])
        .then(() => undefined),
  },
  { name: 'special files, owners, xattrs and times reach children', run: specialFiles },
  { name: 'a view cannot be written (EROFS)', run: viewReadOnly },
  { name: 'root permissions', run: rootPermission },
  { name: '128 layers mounted', timeout: 300_000, run: layers128 },
];
