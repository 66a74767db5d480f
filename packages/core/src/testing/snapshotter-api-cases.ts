/**
 * The cases of the snapshotter suite about records and errors (containerd's StatActive, StatComitted, Update,
 * Remove, Walk, StatInWalk, PrepareView, RemoveIntermediateSnapshot, CloseTwice), and what containerd's suite leaves
 * implicit: the error classes, usage, cleanup, concurrent calls, keys of any shape.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect } from 'vitest';
import type { Mount, SnapshotInfo, SnapshotKind } from '../kinds/snapshots.js';
import { expectFailure } from './helpers.js';
import { createFile, ops } from './fstest.js';
import type { CaseEnv, SnapshotterCase } from './snapshotter-env.js';

async function names(env: CaseEnv, filters?: readonly string[]): Promise<string[]> {
  const out: string[] = [];
  for await (const info of env.sn.walk(env.ctx, filters)) out.push(info.name);
  return env.mine(out);
}

/** A committed snapshot `name` (with one file), made from the active `<name>-active`. */
async function committed(env: CaseEnv, name: string, parent = '', labels = env.opt.labels): Promise<string> {
  await env.apply(await env.sn.prepare(env.ctx, `${name}-active`, parent, env.opt), createFile(`/${name.slice(-20)}`, name));
  await env.sn.commit(env.ctx, name, `${name}-active`, { labels });
  return name;
}

/** Mounts `mounts` and expects exactly the files that `committed` wrote for each of `layers`, with their content. */
async function expectLayers(env: CaseEnv, mounts: readonly Mount[], layers: readonly string[]): Promise<void> {
  await env.withMount(mounts, async (dir) => {
    expect((await readdir(dir)).sort(), `the tree of ${layers.join(' <- ') || 'an empty snapshot'}`).toEqual(layers.map((n) => n.slice(-20)).sort());
    for (const n of layers) expect(await env.readText(dir, n.slice(-20))).toBe(n);
  });
}

/**
 * containerd's baseTestSnapshots: c1 <- c2 committed (each with a file of its own), a1 on c2 and a2 without parent
 * active, v1 on c2 and v2 without parent views.
 */
async function baseSnapshots(env: CaseEnv): Promise<Record<'c1' | 'c2' | 'a1' | 'a2' | 'v1' | 'v2', string>> {
  const { sn, ctx } = env;
  const k = { c1: env.key('c1'), c2: env.key('c2'), a1: env.key('a1'), a2: env.key('a2'), v1: env.key('v1'), v2: env.key('v2') };
  await committed(env, k.c1);
  await committed(env, k.c2, k.c1);
  await sn.prepare(ctx, k.a1, k.c2, env.opt);
  await sn.prepare(ctx, k.a2, '', env.opt);
  await sn.view(ctx, k.v1, k.c2, env.opt);
  await sn.view(ctx, k.v2, '', env.opt);
  return k;
}

function expectTimeWithin(t: Date, from: number, to: number, what: string): void {
  expect(t, what).toBeInstanceOf(Date);
  // 1 ms either way: a store may keep milliseconds while the clock read here had more.
  expect(t.getTime(), `${what} ${t.toISOString()} within [${new Date(from).toISOString()}, ${new Date(to).toISOString()}]`).toBeGreaterThanOrEqual(from - 1);
  expect(t.getTime()).toBeLessThanOrEqual(to + 1);
}

async function statKinds(env: CaseEnv): Promise<void> {
  const { sn, ctx } = env;
  const preparing = env.key('preparing');
  const before = Date.now();
  const opt = env.opt;
  const mounts = await sn.prepare(ctx, preparing, '', opt);
  await env.withMount(mounts, (dir) => writeFile(join(dir, 'foo'), 'foo\n'));
  const active = await sn.stat(ctx, preparing);
  expect(active).toMatchObject({ name: preparing, kind: 'active', parent: '' });
  expectTimeWithin(active.createdAt, before, Date.now(), 'createdAt of the active snapshot');
  expect(active.updatedAt.getTime()).toBe(active.createdAt.getTime());
  expect(active.labels).toEqual(opt.labels);

  const name = env.key('committed');
  const beforeCommit = Date.now();
  await sn.commit(ctx, name, preparing, env.opt);
  const done = await sn.stat(ctx, name);
  expect(done).toMatchObject({ name, kind: 'committed', parent: '' });
  expectTimeWithin(done.createdAt, beforeCommit, Date.now(), 'createdAt of the committed snapshot (set at commit)');
  await expectFailure(sn.stat(ctx, preparing), 'not-found');

  const view = env.key('view');
  await sn.view(ctx, view, name, env.opt);
  expect(await sn.stat(ctx, view)).toMatchObject({ name: view, kind: 'view', parent: name });
  await env.withMount(await sn.mounts(ctx, view), async (dir) => {
    expect(await readdir(dir)).toEqual(['foo']);
    expect(await env.readText(dir, 'foo')).toBe('foo\n');
  });
}

async function labelsAtCreation(env: CaseEnv): Promise<void> {
  const { sn, ctx } = env;
  const [a, c, v, bare] = [env.key('a'), env.key('c'), env.key('v'), env.key('bare')];
  await sn.prepare(ctx, a, '', { labels: { 'example.com/a': '1', other: 'x' } });
  expect((await sn.stat(ctx, a)).labels).toEqual({ 'example.com/a': '1', other: 'x' });
  // A commit keeps the parent and takes the labels given to it, not those of the active snapshot (containerd).
  await sn.commit(ctx, c, a, { labels: { 'example.com/c': '2' } });
  const done = await sn.stat(ctx, c);
  expect(done).toMatchObject({ parent: '', kind: 'committed' });
  // toEqual, not toMatchObject: the labels must be exactly these (toMatchObject would let extra ones through).
  expect(done.labels).toEqual({ 'example.com/c': '2' });
  await sn.view(ctx, v, c, { labels: { 'example.com/v': '3' } });
  expect((await sn.stat(ctx, v)).labels).toEqual({ 'example.com/v': '3' });
  await sn.prepare(ctx, bare, c);
  expect((await sn.stat(ctx, bare)).labels).toEqual({});
}

async function mountsAgain(env: CaseEnv): Promise<void> {
  const { sn, ctx } = env;
  const base = await committed(env, env.key('base'));
  for (const [key, parent, make] of [
    [env.key('a-root'), '', 'prepare'],
    [env.key('a-child'), base, 'prepare'],
    [env.key('v-root'), '', 'view'],
    [env.key('v-child'), base, 'view'],
  ] as const) {
    const given = make === 'prepare' ? await sn.prepare(ctx, key, parent, env.opt) : await sn.view(ctx, key, parent, env.opt);
    expect(await sn.mounts(ctx, key), `mounts of ${make} ${key}`).toEqual(given);
  }
  await expectFailure(sn.mounts(ctx, base), 'failed-precondition');
}

/** containerd's checkUpdate, on every kind. */
async function update(env: CaseEnv): Promise<void> {
  const { sn, ctx } = env;
  const t1 = Date.now();
  const k = await baseSnapshots(env);
  const t2 = Date.now();
  const cases: [string, SnapshotKind, string][] = [
    [k.c1, 'committed', ''],
    [k.c2, 'committed', k.c1],
    [k.a1, 'active', k.c2],
    [k.a2, 'active', ''],
    [k.v1, 'view', k.c2],
    [k.v2, 'view', ''],
  ];
  for (const [name, kind, parent] of cases) {
    const st = await sn.stat(ctx, name);
    expectTimeWithin(st.createdAt, t1, t2, `createdAt of ${name}`);
    expect(st.updatedAt.getTime(), `updatedAt of ${name} right after creation`).toBe(st.createdAt.getTime());
    expect(st).toMatchObject({ name, kind, parent });

    const root = new Date().toISOString();
    let expected: Record<string, string> = { l1: 'v1', l2: 'v2', l3: 'v3', 'containerd.io/gc.root': root };
    const u1 = Date.now();
    let got: SnapshotInfo = await sn.update(ctx, { name, labels: expected });
    const u2 = Date.now();
    expect(got.createdAt.getTime(), `createdAt of ${name} after an update`).toBe(st.createdAt.getTime());
    expectTimeWithin(got.updatedAt, u1, u2, `updatedAt of ${name}`);
    expect(got).toMatchObject({ name, kind, parent });
    expect(got.labels).toEqual(expected);
    expect(await sn.stat(ctx, name)).toEqual(got);

    // `labels.<key>` sets one label, or removes it when the value given is absent.
    got = await sn.update(ctx, { name, labels: { l1: 'updated', l4: 'v4' } }, ['labels.l1', 'labels.l2']);
    expected = { l1: 'updated', l3: 'v3', 'containerd.io/gc.root': root };
    expect(got.labels).toEqual(expected);
    expected = { l4: 'v4', 'containerd.io/gc.root': root };
    got = await sn.update(ctx, { name, labels: expected }, ['labels']);
    expect(got.labels).toEqual(expected);
    expect((await sn.stat(ctx, name)).labels).toEqual(expected);

    // Only labels are mutable.
    await expectFailure(sn.update(ctx, { name, labels: expected }, ['parent']), 'invalid-argument');
    await expectFailure(sn.update(ctx, { name, labels: {} }, ['kind']), 'invalid-argument');
    const after = await sn.stat(ctx, name);
    expect(after).toMatchObject({ kind, parent });
    expect(after.labels).toEqual(expected);
  }
  await expectFailure(sn.update(ctx, { name: env.key('missing'), labels: {} }), 'not-found');
  // Labels are records only: every snapshot still mounts with its tree.
  for (const key of [k.a1, k.v1]) await expectLayers(env, await sn.mounts(ctx, key), [k.c1, k.c2]);
  for (const key of [k.a2, k.v2]) await expectLayers(env, await sn.mounts(ctx, key), []);
  await expectLayers(env, await sn.view(ctx, env.key('c1-view'), k.c1, env.opt), [k.c1]);
}

/** containerd's checkRemove: keys are free again once removed. */
async function removeAndReuse(env: CaseEnv): Promise<void> {
  const { sn, ctx } = env;
  const [ca, c1, reuse] = [env.key('committed-a'), env.key('committed-1'), env.key('reuse-1')];
  await sn.prepare(ctx, ca, '', env.opt);
  await sn.commit(ctx, c1, ca, env.opt);
  await sn.prepare(ctx, reuse, c1, env.opt);
  await sn.remove(ctx, reuse);
  await sn.view(ctx, reuse, c1, env.opt);
  await sn.remove(ctx, reuse);
  await sn.prepare(ctx, reuse, '', env.opt);
  await sn.remove(ctx, c1);
  await sn.commit(ctx, c1, reuse, env.opt);
  expect(await sn.stat(ctx, c1)).toMatchObject({ kind: 'committed', parent: '' });
  await expectFailure(sn.remove(ctx, reuse), 'not-found');
}

async function removeIntermediate(env: CaseEnv): Promise<void> {
  const { sn, ctx } = env;
  const base = await committed(env, env.key('committed-base'));
  const inter = await committed(env, env.key('committed-inter'), base);
  const top = env.key('toplayer');
  await sn.prepare(ctx, top, inter, env.opt);
  const err = await expectFailure(sn.remove(ctx, inter), 'failed-precondition');
  expect(err.message.length).toBeGreaterThan(0);
  await expectFailure(sn.remove(ctx, base), 'failed-precondition');
  // Refused means untouched: the intermediate still mounts with its content.
  expect(await sn.stat(ctx, inter)).toMatchObject({ kind: 'committed', parent: base });
  await env.withMount(await sn.mounts(ctx, top), async (dir) => {
    expect(await env.readText(dir, inter.slice(-20))).toBe(inter);
    expect(await env.readText(dir, base.slice(-20))).toBe(base);
  });
  await sn.remove(ctx, top);
  // A view is a child too.
  const view = env.key('view');
  await sn.view(ctx, view, inter, env.opt);
  await expectFailure(sn.remove(ctx, inter), 'failed-precondition');
  await sn.remove(ctx, view);
  await sn.remove(ctx, inter);
  await sn.remove(ctx, base);
  expect(await names(env)).toEqual([]);
}

async function keyInUse(env: CaseEnv): Promise<void> {
  const { sn, ctx } = env;
  const snapA = await committed(env, env.key('snapA'));
  const [layer, prep, view] = [env.key('newlayer'), env.key('prepLayer'), env.key('viewLayer')];
  await sn.prepare(ctx, layer, snapA, env.opt);
  await expectFailure(sn.view(ctx, layer, snapA, env.opt), 'already-exists');
  await sn.prepare(ctx, prep, snapA, env.opt);
  await expectFailure(sn.prepare(ctx, prep, snapA, env.opt), 'already-exists');
  await expectFailure(sn.prepare(ctx, prep, '', env.opt), 'already-exists');
  await sn.view(ctx, view, snapA, env.opt);
  await expectFailure(sn.view(ctx, view, snapA, env.opt), 'already-exists');
  await expectFailure(sn.prepare(ctx, view, '', env.opt), 'already-exists');
  // Keys and names share one space.
  await expectFailure(sn.prepare(ctx, snapA, '', env.opt), 'already-exists');
  await expectFailure(sn.commit(ctx, snapA, layer, env.opt), 'already-exists');
  await expectFailure(sn.commit(ctx, prep, layer, env.opt), 'already-exists');
  // Nothing changed by the refusals.
  expect(await sn.stat(ctx, layer)).toMatchObject({ kind: 'active', parent: snapA });
  expect(await sn.stat(ctx, prep)).toMatchObject({ kind: 'active', parent: snapA });
  expect(await sn.stat(ctx, view)).toMatchObject({ kind: 'view', parent: snapA });
  expect(await names(env)).toEqual([layer, prep, snapA, view].sort());
}

async function errors(env: CaseEnv): Promise<void> {
  const { sn, ctx } = env;
  const missing = env.key('missing');
  const base = await committed(env, env.key('base'));
  const active = env.key('active');
  const view = env.key('view');
  await sn.prepare(ctx, active, base, env.opt);
  await sn.view(ctx, view, base, env.opt);
  const before = await names(env);

  await expectFailure(sn.stat(ctx, missing), 'not-found');
  await expectFailure(sn.mounts(ctx, missing), 'not-found');
  await expectFailure(sn.usage(ctx, missing), 'not-found');
  await expectFailure(sn.remove(ctx, missing), 'not-found');
  await expectFailure(sn.commit(ctx, env.key('new-name'), missing, env.opt), 'not-found');
  await expectFailure(sn.prepare(ctx, env.key('on-missing'), missing, env.opt), 'not-found');
  await expectFailure(sn.view(ctx, env.key('view-on-missing'), missing, env.opt), 'not-found');

  // Only an active snapshot can be committed; only active and view snapshots have mounts.
  await expectFailure(sn.commit(ctx, env.key('from-view'), view, env.opt), 'failed-precondition');
  await expectFailure(sn.commit(ctx, env.key('from-committed'), base, env.opt), 'failed-precondition');
  await expectFailure(sn.mounts(ctx, base), 'failed-precondition');

  // A parent must be committed (containerd's storage says InvalidArgument: "parent ... is not committed snapshot").
  await expectFailure(sn.prepare(ctx, env.key('on-active'), active, env.opt), 'invalid-argument');
  await expectFailure(sn.prepare(ctx, env.key('on-view'), view, env.opt), 'invalid-argument');
  await expectFailure(sn.view(ctx, env.key('view-on-active'), active, env.opt), 'invalid-argument');

  // Empty keys and names are refused.
  await expectFailure(sn.prepare(ctx, '', '', env.opt), 'invalid-argument');
  await expectFailure(sn.view(ctx, '', base, env.opt), 'invalid-argument');
  await expectFailure(sn.commit(ctx, '', active, env.opt), 'invalid-argument');

  // A filter that does not parse.
  await expectFailure(names(env, ['name==']), 'invalid-argument');

  // None of the refusals left anything behind or changed anything.
  expect(await names(env)).toEqual(before);
  expect(await sn.stat(ctx, active)).toMatchObject({ kind: 'active', parent: base });
  expect(await sn.stat(ctx, view)).toMatchObject({ kind: 'view', parent: base });
}

/** containerd's checkWalk. */
async function walk(env: CaseEnv): Promise<void> {
  const { sn, ctx } = env;
  const root = { labels: { 'containerd.io/gc.root': 'check-walk' } };
  const k = (n: string) => env.key(n);
  await sn.prepare(ctx, k('a-np'), '', root);
  await committed(env, k('p'), '', root.labels);
  await sn.prepare(ctx, k('a'), k('p'), root);
  await sn.view(ctx, k('v'), k('p'), root);
  await committed(env, k('p-wl'), '', { l: '1', 'containerd.io/gc.root': 'check-walk' });
  await sn.prepare(ctx, k('a-wl'), k('p-wl'), { labels: { l: '2', 'containerd.io/gc.root': 'check-walk' } });
  await sn.view(ctx, k('v-wl'), k('p-wl'), { labels: { l: '3', 'containerd.io/gc.root': 'check-walk' } });
  await sn.prepare(ctx, k('a-np-wl'), '', { labels: { l: '2', 'containerd.io/gc.root': 'check-walk' } });

  const table: [string[], string[]][] = [
    [['a-np', 'p', 'a', 'v', 'p-wl', 'a-wl', 'v-wl', 'a-np-wl'], ['labels."containerd.io/gc.root"==check-walk']],
    [['a-np', 'a', 'a-wl', 'a-np-wl'], ['kind==active,labels."containerd.io/gc.root"==check-walk']],
    [['v', 'v-wl'], ['kind==view,labels."containerd.io/gc.root"==check-walk']],
    [['p', 'p-wl'], ['kind==committed,labels."containerd.io/gc.root"==check-walk']],
    [['p', 'a-np-wl'], [`name==${k('p')}`, `name==${k('a-np-wl')}`]],
    [['a-wl'], [`name==${k('a-wl')},labels.l`]],
    [['a', 'v'], [`parent==${k('p')}`]],
    [['a', 'v', 'a-wl', 'v-wl'], ['parent!="",labels."containerd.io/gc.root"==check-walk']],
    [['p-wl', 'a-wl', 'v-wl', 'a-np-wl'], ['labels.l']],
    [['a-wl', 'a-np-wl'], ['labels.l==2']],
    [['a-np', 'p', 'a', 'v', 'p-wl', 'a-wl', 'v-wl', 'a-np-wl'], []],
    [['a-wl', 'v-wl'], [`labels.l~=^[23]$,parent==${k('p-wl')}`]],
  ];
  for (const [matches, filters] of table) {
    expect(await names(env, filters), `walk ${JSON.stringify(filters)}`).toEqual(matches.map(k).sort());
  }
  // What walk found mounts with its parents' trees.
  for (const key of ['a', 'v']) await expectLayers(env, await sn.mounts(ctx, k(key)), [k('p')]);
  for (const key of ['a-wl', 'v-wl']) await expectLayers(env, await sn.mounts(ctx, k(key)), [k('p-wl')]);
  await expectLayers(env, await sn.mounts(ctx, k('a-np')), []);
}

/** containerd's checkStatInWalk: what walk yields is what stat says. */
async function statInWalk(env: CaseEnv): Promise<void> {
  const { sn, ctx } = env;
  const k = await baseSnapshots(env);
  let seen = 0;
  for await (const info of sn.walk(ctx)) {
    if (env.mine([info.name]).length === 0) continue;
    expect(await sn.stat(ctx, info.name), `stat of ${info.name}`).toEqual(info);
    seen++;
  }
  expect(seen).toBe(Object.keys(k).length);
}

async function usage(env: CaseEnv): Promise<void> {
  const { sn, ctx } = env;
  const MiB = 1024 * 1024;
  const a = env.key('a');
  const mounts = await sn.prepare(ctx, a, '', env.opt);
  const empty = await sn.usage(ctx, a);
  expect(empty.inodes, 'inodes of an empty active snapshot').toBeLessThanOrEqual(2);
  expect(empty.size, 'size of an empty active snapshot').toBeLessThanOrEqual(64 * 1024);
  await env.apply(
    mounts,
    ops(async (root) => {
      await mkdir(join(root, 'd1/d2'), { recursive: true });
    }, createFile('/big', randomBytes(MiB)), createFile('/d1/small', 'x'.repeat(100)), createFile('/d1/d2/empty', '')),
  );
  // 2 directories and 3 files (and perhaps the root): the 1 MiB file dominates, blocks of a few KiB for the rest.
  const used = await sn.usage(ctx, a);
  expect(used.inodes, 'inodes of the active snapshot').toBeGreaterThanOrEqual(5);
  expect(used.inodes).toBeLessThanOrEqual(7);
  expect(used.size, 'size of the active snapshot').toBeGreaterThanOrEqual(MiB);
  expect(used.size).toBeLessThanOrEqual(MiB + 256 * 1024);

  const c = env.key('c');
  await sn.commit(ctx, c, a, env.opt);
  expect(await sn.usage(ctx, c), 'usage of the committed snapshot is what the active one used').toEqual(used);

  const b = env.key('b');
  await env.apply(await sn.prepare(ctx, b, c, env.opt), createFile('/more', randomBytes(200 * 1024)));
  const child = await sn.usage(ctx, b);
  expect(child.size, 'size of a child counts what it wrote').toBeGreaterThanOrEqual(200 * 1024);
  expect(child.inodes).toBeGreaterThanOrEqual(1);
  // A copy-based snapshotter also counts its copy of the parent; nothing should count much more than that.
  expect(child.size).toBeLessThanOrEqual(used.size + 200 * 1024 + 256 * 1024);
}

async function cleanupKeeps(env: CaseEnv): Promise<void> {
  const { sn, ctx } = env;
  const flat = await env.dir('flat');
  const layer = ops(createFile('/kept', 'kept'), createFile('/bin-ish', randomBytes(4096), 0o755));
  const c = env.key('c');
  await env.apply(await sn.prepare(ctx, `${c}-active`, '', env.opt), layer);
  await sn.commit(ctx, c, `${c}-active`, env.opt);
  await layer(flat, env.sys);
  const a = env.key('a');
  await env.apply(await sn.prepare(ctx, a, c, env.opt), createFile('/written', 'by the active one'));
  const v = env.key('v');
  await sn.view(ctx, v, c, env.opt);
  const e = env.key('e');
  await sn.prepare(ctx, e, '', env.opt);
  const infos = await Promise.all([c, a, v, e].map((key) => sn.stat(ctx, key)));

  await sn.cleanup(ctx);
  await sn.cleanup(ctx);

  expect(await Promise.all([c, a, v, e].map((key) => sn.stat(ctx, key)))).toEqual(infos);
  await env.withMount(await sn.mounts(ctx, v), (dir) => env.expectTree(dir, flat));
  await env.expectSnapshot(c, flat);
  await env.withMount(await sn.mounts(ctx, a), async (dir) => {
    expect(await env.readText(dir, 'written')).toBe('by the active one');
    expect(await env.readText(dir, 'kept')).toBe('kept');
  });
  await sn.commit(ctx, env.key('a-committed'), a, env.opt);
  await env.withMount(await sn.prepare(ctx, env.key('after'), env.key('a-committed'), env.opt), async (dir) => {
    expect(await env.readText(dir, 'written')).toBe('by the active one');
  });
}

async function keyShapes(env: CaseEnv): Promise<void> {
  const { sn, ctx } = env;
  const keys = [
    env.key('default/1/with/slashes'),
    env.key(`extract-1700000000000000000-AbCd sha256:${'e'.repeat(64)}`),
    env.key('ключ-ü-✓-🙂'),
    env.key('../../../outside'),
    env.key('x'.repeat(400)),
  ];
  let parent = '';
  for (const [i, key] of keys.entries()) {
    await env.apply(await sn.prepare(ctx, `${key}-a`, parent, env.opt), createFile(`/f${i}`, key));
    await sn.commit(ctx, key, `${key}-a`, env.opt);
    expect(await sn.stat(ctx, key)).toMatchObject({ name: key, parent, kind: 'committed' });
    parent = key;
  }
  expect(await names(env)).toEqual([...keys].sort());
  expect(await names(env, [`name==${JSON.stringify(keys[1])}`])).toEqual([keys[1]]);
  await env.withMount(await sn.view(ctx, env.key('view'), parent, env.opt), async (dir) => {
    for (const [i, key] of keys.entries()) expect(await env.readText(dir, `f${i}`)).toBe(key);
  });
}

async function concurrent(env: CaseEnv): Promise<void> {
  const { sn, ctx } = env;
  const base = await committed(env, env.key('base'));
  const keys = Array.from({ length: 6 }, (_, i) => env.key(`sibling-${i}`));
  const all = await Promise.all(keys.map((key) => sn.prepare(ctx, key, base, env.opt)));
  // Siblings are isolated: what one writes, the others do not see.
  await env.apply(all[0]!, createFile('/only-in-0', 'zero'));
  for (const [i, mounts] of all.entries()) {
    await env.withMount(mounts, async (dir) => {
      expect(await env.readText(dir, base.slice(-20))).toBe(base);
      const seen = await env.readText(dir, 'only-in-0').catch(() => undefined);
      expect(seen, `sibling ${i}`).toBe(i === 0 ? 'zero' : undefined);
    });
  }
  // Of concurrent prepares of one key, exactly one wins.
  const same = env.key('contended');
  const outcomes = await Promise.allSettled(Array.from({ length: 5 }, () => sn.prepare(ctx, same, base, env.opt)));
  expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(1);
  for (const o of outcomes) if (o.status === 'rejected') await expectFailure(Promise.reject(o.reason), 'already-exists');
  expect((await names(env)).filter((n) => n === same)).toEqual([same]);
  // Concurrent commits and removes of different snapshots all land.
  await Promise.all(keys.map((key, i) => (i % 2 === 0 ? sn.commit(ctx, `${key}-c`, key, env.opt) : sn.remove(ctx, key))));
  expect(await names(env)).toEqual([base, same, ...keys.filter((_, i) => i % 2 === 0).map((k) => `${k}-c`)].sort());
}

async function closeTwice(env: CaseEnv): Promise<void> {
  const { sn, ctx } = env;
  const closable = sn as { close?: () => Promise<void> | void };
  if (typeof closable.close !== 'function') env.skip('this snapshotter has no close()');
  const n = env.key('closeTwice');
  await env.apply(await sn.prepare(ctx, `${n}-prepare`, '', env.opt), createFile('/before-close', 'x'));
  await sn.commit(ctx, n, `${n}-prepare`, env.opt);
  await env.withMount(await sn.view(ctx, `${n}-view`, n, env.opt), async (dir) => expect(await env.readText(dir, 'before-close')).toBe('x'));
  await sn.remove(ctx, `${n}-view`);
  await sn.remove(ctx, n);
  await closable.close!.call(sn);
  await closable.close!.call(sn);
}

export const apiCases: readonly SnapshotterCase[] = [
  { name: 'stat of active, committed and view snapshots', run: statKinds },
  { name: 'labels given at prepare, view and commit', run: labelsAtCreation },
  { name: 'mounts returns what prepare and view returned', run: mountsAgain },
  { name: 'update of labels (field paths)', run: update },
  { name: 'walk with filters (name, parent, kind, labels)', run: walk },
  { name: 'stat in walk', run: statInWalk },
  { name: 'remove and reuse of keys', run: removeAndReuse },
  { name: 'removing an intermediate snapshot is refused while it has children', run: removeIntermediate },
  { name: 'a key in use is refused (AlreadyExists)', run: keyInUse },
  { name: 'errors (NotFound, FailedPrecondition, InvalidArgument) change nothing', run: errors },
  { name: 'usage of active and committed snapshots', run: usage },
  { name: 'cleanup leaves existing snapshots intact', run: cleanupKeeps },
  { name: 'keys of any shape', run: keyShapes },
  { name: 'concurrent prepares, commits and removes', run: concurrent },
  { name: 'close twice', run: closeTwice },
];
