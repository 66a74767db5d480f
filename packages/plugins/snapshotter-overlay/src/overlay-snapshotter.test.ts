import { existsSync } from 'node:fs';
import { lstat, mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MOUNT_DATA_MAX } from '@berth/sys';
import { expectFailure } from '@berth/core/testing';
import type { SnapshotInfo } from '@berth/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { UPPERDIR_LABEL } from './overlay-snapshotter.js';
import { createFixture, ctx, mountsUnavailable, type Fixture } from './testing-fixtures/helpers.js';

const unavailable = mountsUnavailable();

async function all<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of iterable) out.push(x);
  return out;
}

const names = (infos: readonly SnapshotInfo[]) => infos.map((i) => i.name).sort();

describe.skipIf(unavailable !== undefined)(`overlay snapshotter${unavailable ? ` (skipped: ${unavailable})` : ''}`, () => {
  let f: Fixture;
  beforeEach(async () => {
    f = await createFixture();
  });
  afterEach(async () => {
    await f.dispose();
  });

  const snapshots = () => join(f.root, 'snapshots');
  const fsOf = (mounts: { source: string; options: readonly string[] }[]) => {
    const m = mounts[0]!;
    if (m.source !== 'overlay') return m.source;
    return m.options.find((o) => o.startsWith('upperdir='))!.slice('upperdir='.length);
  };

  it('gives a snapshot without parents a bind mount of its fs (rw active, ro view) and lays it out as containerd does', async () => {
    const s = f.snapshotter;
    const active = await s.prepare(ctx, 'a', '');
    expect(active).toEqual([{ type: 'bind', source: join(snapshots(), '1', 'fs'), options: ['rw', 'rbind'] }]);
    expect((await stat(join(snapshots(), '1', 'fs'))).mode & 0o7777).toBe(0o755);
    expect((await stat(join(snapshots(), '1', 'work'))).mode & 0o7777).toBe(0o711);
    const view = await s.view(ctx, 'v', '');
    expect(view).toEqual([{ type: 'bind', source: join(snapshots(), '2', 'fs'), options: ['ro', 'rbind'] }]);
    expect(existsSync(join(snapshots(), '2', 'work'))).toBe(false);
    expect(await s.mounts(ctx, 'a')).toEqual(active);
    expect(existsSync(join(f.root, 'metadata.lmdb'))).toBe(true);

    const target = await f.mount(active);
    await writeFile(join(target, 'hello'), 'world');
    await f.unmount(target);
    expect(await readFile(join(snapshots(), '1', 'fs', 'hello'), 'utf8')).toBe('world');
    const ro = await f.mount(view);
    await expect(writeFile(join(ro, 'x'), 'y')).rejects.toMatchObject({ code: 'EROFS' });
  });

  it('stacks a chain as an overlay: index=off, workdir, upperdir, then lowerdir nearest parent first', async () => {
    const s = f.snapshotter;
    const m1 = await s.prepare(ctx, 'k1', '');
    await writeFile(join(fsOf(m1), 'f'), 'one');
    await writeFile(join(fsOf(m1), 'only1'), '1');
    await s.commit(ctx, 'c1', 'k1');
    const m2 = await s.prepare(ctx, 'k2', 'c1');
    expect(m2).toHaveLength(1);
    expect(m2[0]!.type).toBe('overlay');
    expect(m2[0]!.source).toBe('overlay');
    const expected = [`workdir=${join(snapshots(), '2', 'work')}`, `upperdir=${join(snapshots(), '2', 'fs')}`, `lowerdir=${join(snapshots(), '1', 'fs')}`];
    if (existsSync('/sys/module/overlay/parameters/index')) expected.unshift('index=off');
    expect(m2[0]!.options).toEqual(expected);

    const t2 = await f.mount(m2);
    expect(await readFile(join(t2, 'f'), 'utf8')).toBe('one');
    await writeFile(join(t2, 'f'), 'two');
    await f.unmount(t2);
    await s.commit(ctx, 'c2', 'k2');

    // A view of one layer is a read-only bind of it; of two, an overlay of lowerdirs only.
    expect(await s.view(ctx, 'v1', 'c1')).toEqual([{ type: 'bind', source: join(snapshots(), '1', 'fs'), options: ['ro', 'rbind'] }]);
    const v2 = await s.view(ctx, 'v2', 'c2');
    expect(v2[0]!.options.filter((o) => /^(upperdir|workdir)=/.test(o))).toEqual([]);
    expect(v2[0]!.options.at(-1)).toBe(`lowerdir=${join(snapshots(), '2', 'fs')}:${join(snapshots(), '1', 'fs')}`);
    const tv = await f.mount(v2);
    expect(await readFile(join(tv, 'f'), 'utf8')).toBe('two');
    expect(await readFile(join(tv, 'only1'), 'utf8')).toBe('1');
    await expect(writeFile(join(tv, 'new'), 'x')).rejects.toMatchObject({ code: 'EROFS' });
  });

  it('mounts 128 layers although their options are longer than a page (mountAll compacts them), returning absolute paths', async () => {
    const s = f.snapshotter;
    let parent = '';
    for (let i = 0; i < 128; i++) {
      const m = await s.prepare(ctx, `k${i}`, parent);
      const target = await f.mount(m);
      await writeFile(join(target, `layer-${i}`), String(i));
      await writeFile(join(target, 'top'), String(i));
      await f.unmount(target);
      await s.commit(ctx, `c${i}`, `k${i}`);
      parent = `c${i}`;
    }
    const mounts = await s.prepare(ctx, 'top', parent);
    const lowerdir = mounts[0]!.options.find((o) => o.startsWith('lowerdir='))!;
    expect(lowerdir.split(':')).toHaveLength(128);
    expect(lowerdir.slice('lowerdir='.length).split(':').every((d) => d.startsWith('/'))).toBe(true);
    expect(mounts[0]!.options.join(',').length).toBeGreaterThan(MOUNT_DATA_MAX);
    const target = await f.mount(mounts);
    expect(await readFile(join(target, 'top'), 'utf8')).toBe('127');
    for (let i = 0; i < 128; i++) expect(await readFile(join(target, `layer-${i}`), 'utf8')).toBe(String(i));
    await writeFile(join(target, 'written'), 'on top');
    await f.unmount(target);
    expect(await readFile(join(fsOf(mounts), 'written'), 'utf8')).toBe('on top');
    const view = await f.mount(await s.view(ctx, 'view', parent));
    expect(await readFile(join(view, 'layer-0'), 'utf8')).toBe('0');
  }, 120_000);

  it('gives the upperdir of a child the owner of its parent`s root', async () => {
    const s = f.snapshotter;
    const m = await s.prepare(ctx, 'k', '');
    const { chown } = await import('node:fs/promises');
    await chown(fsOf(m), 1234, 5678);
    await s.commit(ctx, 'c', 'k');
    const child = await s.prepare(ctx, 'child', 'c');
    const st = await stat(fsOf(child));
    expect([st.uid, st.gid]).toEqual([1234, 5678]);
  });

  it('refuses what containerd refuses, with its classes', async () => {
    const s = f.snapshotter;
    await expectFailure(s.stat(ctx, 'missing'), 'not-found', 'snapshot missing: not found');
    await s.prepare(ctx, 'a', '');
    await expectFailure(s.prepare(ctx, 'a', ''), 'already-exists');
    await expectFailure(s.prepare(ctx, 'b', 'nope'), 'not-found', 'parent');
    await expectFailure(s.prepare(ctx, 'b', 'a'), 'invalid-argument', 'not a committed snapshot');
    await s.view(ctx, 'v', '');
    await expectFailure(s.commit(ctx, 'cv', 'v'), 'failed-precondition', 'not active');
    await expectFailure(s.commit(ctx, 'c', 'missing'), 'not-found');
    await s.commit(ctx, 'c', 'a');
    await expectFailure(s.mounts(ctx, 'c'), 'failed-precondition');
    await s.prepare(ctx, 'a2', '');
    await expectFailure(s.commit(ctx, 'c', 'a2'), 'already-exists');
    await expectFailure(s.commit(ctx, 'a2', 'a2'), 'already-exists');
    await expectFailure(s.prepare(ctx, '', ''), 'invalid-argument', 'must not be empty');
    await expectFailure(s.prepare(ctx, 'x'.repeat(4000), ''), 'invalid-argument', 'bytes');
    await expectFailure(s.prepare(ctx, 'nul\0key', ''), 'invalid-argument', 'NUL');
    await expectFailure(s.prepare(ctx, 'l', '', { labels: { ['k'.repeat(5000)]: 'v' } }), 'invalid-argument', 'label');
    await expectFailure(s.update(ctx, { name: 'c', labels: {} }, ['kind']), 'invalid-argument', 'cannot update "kind"');
    await expectFailure(s.remove(ctx, 'missing'), 'not-found');
    // Nothing refused left a directory or a record behind.
    expect((await readdir(snapshots())).sort()).toEqual(['1', '2', '3']);
    expect(names(await all(s.walk(ctx)))).toEqual(['a2', 'c', 'v']);
  });

  it('refuses to remove a snapshot with children, then removes record and directory', async () => {
    const s = f.snapshotter;
    await s.prepare(ctx, 'k', '');
    await s.commit(ctx, 'base', 'k');
    await s.prepare(ctx, 'child', 'base');
    await s.view(ctx, 'view', 'base');
    await expectFailure(s.remove(ctx, 'base'), 'failed-precondition', 'with child');
    await s.remove(ctx, 'child');
    await expectFailure(s.remove(ctx, 'base'), 'failed-precondition', 'with child');
    await s.remove(ctx, 'view');
    // A committed child holds its parent as an active one did.
    const m = await s.prepare(ctx, 'k2', 'base');
    await s.commit(ctx, 'c2', 'k2');
    await expectFailure(s.remove(ctx, 'base'), 'failed-precondition', 'with child');
    expect(existsSync(fsOf(m))).toBe(true);
    await s.remove(ctx, 'c2');
    expect(existsSync(join(fsOf(m), '..'))).toBe(false);
    await s.remove(ctx, 'base');
    expect(await readdir(snapshots())).toEqual([]);
    await expectFailure(s.stat(ctx, 'base'), 'not-found');
  });

  it('keeps kind, parent, labels and times; commit takes the labels given to it and caches the usage', async () => {
    const s = f.snapshotter;
    const before = Date.now();
    const m = await s.prepare(ctx, 'k', '', { labels: { a: '1', empty: '' } });
    const active = await s.stat(ctx, 'k');
    expect(active).toMatchObject({ kind: 'active', name: 'k', parent: '', labels: { a: '1' } });
    expect(active.createdAt.getTime()).toBeGreaterThanOrEqual(before);
    expect(active.updatedAt).toEqual(active.createdAt);
    await writeFile(join(fsOf(m), 'data'), Buffer.alloc(100_000, 1));
    const activeUsage = await s.usage(ctx, 'k');
    expect(activeUsage.inodes).toBe(2);
    expect(activeUsage.size).toBeGreaterThanOrEqual(100_000);
    await s.commit(ctx, 'c', 'k', { labels: { b: '2' } });
    const committed = await s.stat(ctx, 'c');
    expect(committed).toMatchObject({ kind: 'committed', name: 'c', parent: '', labels: { b: '2' } });
    expect(await s.usage(ctx, 'c')).toEqual(activeUsage);
    // Cached: what changes in the directory afterwards is not seen.
    await writeFile(join(fsOf(m), 'more'), Buffer.alloc(50_000, 1));
    expect(await s.usage(ctx, 'c')).toEqual(activeUsage);
    await s.view(ctx, 'v', 'c');
    expect(await s.stat(ctx, 'v')).toMatchObject({ kind: 'view', parent: 'c' });
    expect(await s.usage(ctx, 'v')).toEqual({ size: 0, inodes: 0 });
    await expectFailure(s.usage(ctx, 'k'), 'not-found');
  });

  it('updates labels by field path, as core applyLabelUpdate does, and moves updatedAt', async () => {
    const s = f.snapshotter;
    await s.prepare(ctx, 'k', '', { labels: { a: '1', b: '2' } });
    const created = await s.stat(ctx, 'k');
    await new Promise((r) => setTimeout(r, 5));
    const one = await s.update(ctx, { name: 'k', labels: { a: 'x', c: '3' } }, ['labels.a']);
    expect(one.labels).toEqual({ a: 'x', b: '2' });
    expect(one.updatedAt.getTime()).toBeGreaterThan(created.updatedAt.getTime());
    expect(one.createdAt).toEqual(created.createdAt);
    expect((await s.update(ctx, { name: 'k', labels: {} }, ['labels.b'])).labels).toEqual({ a: 'x' });
    expect((await s.update(ctx, { name: 'k', labels: { z: '9' } })).labels).toEqual({ z: '9' });
    expect((await s.stat(ctx, 'k')).labels).toEqual({ z: '9' });
    await expectFailure(s.update(ctx, { name: 'nope', labels: {} }), 'not-found');
  });

  it('walks with containerd filters (ORed filters, ANDed selectors, regexps) and refuses bad syntax', async () => {
    const s = f.snapshotter;
    await s.prepare(ctx, 'k1', '', { labels: { 'containerd.io/gc.root': 'x', app: 'web' } });
    await s.commit(ctx, 'c1', 'k1', { labels: { app: 'web' } });
    await s.prepare(ctx, 'k2', 'c1', { labels: { app: 'db' } });
    await s.view(ctx, 'v1', 'c1');
    expect(names(await all(s.walk(ctx)))).toEqual(['c1', 'k2', 'v1']);
    expect(names(await all(s.walk(ctx, ['kind==committed'])))).toEqual(['c1']);
    expect(names(await all(s.walk(ctx, ['parent==c1'])))).toEqual(['k2', 'v1']);
    expect(names(await all(s.walk(ctx, ['parent'])))).toEqual(['c1', 'k2', 'v1']);
    expect(names(await all(s.walk(ctx, ['labels.app==web', 'kind==view'])))).toEqual(['c1', 'v1']);
    expect(names(await all(s.walk(ctx, ['labels.app~=^(w|d),kind!=committed'])))).toEqual(['k2']);
    expect(names(await all(s.walk(ctx, ['labels.app,name~=k'])))).toEqual(['k2']);
    await s.update(ctx, { name: 'k2', labels: { 'containerd.io/gc.root': 'y' } });
    expect(names(await all(s.walk(ctx, ['labels."containerd.io/gc.root"'])))).toEqual(['k2']);
    await expectFailure(all(s.walk(ctx, ['name=='])), 'invalid-argument');
    await expectFailure(all(s.walk(ctx, ['=='])), 'invalid-argument');
  });

  it('adds the upperdir label when configured (upperdir_label)', async () => {
    await f.snapshotter.close();
    const g = await createFixture({ upperdirLabel: true });
    try {
      await g.snapshotter.prepare(ctx, 'k', '', { labels: { a: '1' } });
      const upper = join(g.root, 'snapshots', '1', 'fs');
      expect((await g.snapshotter.stat(ctx, 'k')).labels).toEqual({ a: '1', [UPPERDIR_LABEL]: upper });
      expect((await g.snapshotter.update(ctx, { name: 'k', labels: { b: '2' } })).labels).toEqual({ b: '2', [UPPERDIR_LABEL]: upper });
      expect((await all(g.snapshotter.walk(ctx)))[0]!.labels[UPPERDIR_LABEL]).toBe(upper);
    } finally {
      await g.dispose();
    }
  });

  it('keeps its records across a reopen and never hands out an id twice', async () => {
    const s = f.snapshotter;
    await s.prepare(ctx, 'k1', '', { labels: { a: '1' } });
    await s.commit(ctx, 'c1', 'k1');
    await s.prepare(ctx, 'k2', 'c1');
    await s.prepare(ctx, 'gone', '');
    await s.remove(ctx, 'gone');
    const before = await all(s.walk(ctx));
    const mounts = await s.mounts(ctx, 'k2');
    const again = await f.reopen();
    expect(await all(again.walk(ctx))).toEqual(before);
    expect(await again.mounts(ctx, 'k2')).toEqual(mounts);
    const m = await again.prepare(ctx, 'k3', '');
    expect(m[0]!.source).toBe(join(snapshots(), '4', 'fs'));
  });

  it('skips ids whose directory a crash left behind, and Cleanup removes only what no record names', async () => {
    const s = f.snapshotter;
    await s.prepare(ctx, 'k1', '');
    // What a crash between the rename and the commit, or during a removal, leaves: an id dir and a temp dir.
    await mkdir(join(snapshots(), '2', 'fs'), { recursive: true });
    await writeFile(join(snapshots(), '2', 'fs', 'junk'), 'x');
    await mkdir(join(snapshots(), 'new-0123456789abcdef', 'fs'), { recursive: true });
    await mkdir(join(snapshots(), '77'));
    const m = await s.prepare(ctx, 'k2', '');
    expect(m[0]!.source).toBe(join(snapshots(), '3', 'fs'));
    await s.cleanup(ctx);
    expect((await readdir(snapshots())).sort()).toEqual(['1', '3']);
    expect(await readdir(join(snapshots(), '3', 'fs'))).toEqual([]);
  });

  it('never lets Cleanup take the directory of a snapshot being created', async () => {
    const s = f.snapshotter;
    const created: Promise<unknown>[] = [];
    const cleanups: Promise<void>[] = [];
    for (let i = 0; i < 40; i++) {
      created.push(s.prepare(ctx, `k${i}`, ''));
      cleanups.push(s.cleanup(ctx));
    }
    await Promise.all([...created, ...cleanups]);
    await s.cleanup(ctx);
    const infos = await all(s.walk(ctx));
    expect(infos).toHaveLength(40);
    for (const info of infos) {
      const [mount] = await s.mounts(ctx, info.name);
      expect((await lstat(mount!.source)).isDirectory(), info.name).toBe(true);
    }
    expect(await readdir(snapshots())).toHaveLength(40);
  });

  it('answers UnavailableError after close, and closes twice', async () => {
    const s = f.snapshotter;
    await s.prepare(ctx, 'k', '');
    await s.close();
    await s.close();
    await expectFailure(s.stat(ctx, 'k'), 'unavailable');
    await expectFailure(s.prepare(ctx, 'k2', ''), 'unavailable');
    await expectFailure(all(s.walk(ctx)), 'unavailable');
    await expectFailure(s.cleanup(ctx), 'unavailable');
    await f.reopen();
  });
});
