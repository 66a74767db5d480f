import { describe, expect, it } from 'vitest';
import { isAlreadyExists, isFailedPrecondition, isInvalidArgument, isNotFound } from '@berth/core';
import { useHarness, ctxOf, putBlob, type Harness } from './testing-fixtures/harness.js';
import { keys } from './schema.js';

describe('namespaces', () => {
  let h: Harness;
  useHarness((created) => (h = created));

  it('creates, reads, lists and deletes a namespace', async () => {
    const ns = h.store.namespaces;
    expect(await ns.list()).toEqual([]);
    await ns.create('alpha', { a: '1', empty: '' });
    await ns.create('beta');
    expect(await ns.labels('alpha')).toEqual({ a: '1' });
    expect(await ns.labels('beta')).toEqual({});
    expect((await ns.list()).sort()).toEqual(['alpha', 'beta']);
    await ns.delete('alpha');
    expect(await ns.list()).toEqual(['beta']);
    await expect(ns.labels('alpha')).rejects.toSatisfy(isNotFound);
  });

  it('rejects duplicates, bad names and oversized labels', async () => {
    const ns = h.store.namespaces;
    await ns.create('dup');
    await expect(ns.create('dup')).rejects.toSatisfy(isAlreadyExists);
    for (const bad of ['', 'has space', '-lead', 'trail-', 'a..b', 'x'.repeat(77), 'a/b']) {
      await expect(ns.create(bad), bad).rejects.toSatisfy(isInvalidArgument);
    }
    await expect(ns.create('big', { k: 'v'.repeat(4096) })).rejects.toSatisfy(isInvalidArgument);
    await expect(ns.update('dup', { k: 'v'.repeat(4096) }, ['labels.k'])).rejects.toSatisfy(isInvalidArgument);
    await expect(ns.create('empty-key', { '': 'v' })).rejects.toThrow('label key required');
    await expect(ns.update('dup', { '': 'v' }, ['labels.'])).rejects.toThrow('label key required');
    expect(await ns.labels('dup')).toEqual({});
    expect((await ns.list()).sort()).toEqual(['dup']);
  });

  it('reports NotFound with containerd\'s message', async () => {
    await expect(h.store.namespaces.delete('x')).rejects.toThrow('namespace "x": not found');
    await expect(h.store.namespaces.delete('x')).rejects.toSatisfy(isNotFound);
    await expect(h.store.namespaces.labels('x')).rejects.toThrow('namespace "x": not found');
  });

  it('updates labels with field paths', async () => {
    const ns = h.store.namespaces;
    await ns.create('n', { a: '1', b: '2' });
    expect(await ns.update('n', { c: '3', a: 'ignored' }, ['labels.c'])).toEqual({ a: '1', b: '2', c: '3' });
    expect(await ns.update('n', {}, ['labels.a'])).toEqual({ b: '2', c: '3' });
    expect(await ns.update('n', { b: '' }, ['labels.b'])).toEqual({ c: '3' });
    expect(await ns.update('n', { x: 'y' }, ['labels'])).toEqual({ x: 'y' });
    expect(await ns.update('n', { z: '1', e: '' })).toEqual({ z: '1' });
    expect(await ns.labels('n')).toEqual({ z: '1' });
    await expect(ns.update('n', { z: '2' }, ['name'])).rejects.toSatisfy(isInvalidArgument);
    expect(await ns.labels('n')).toEqual({ z: '1' });
  });

  it('creates namespaces lazily on the first write into them', async () => {
    expect(await h.store.namespaces.list()).toEqual([]);
    // Reads do not create anything.
    await expect(h.store.content.info(ctxOf('lazy'), `sha256:${'0'.repeat(64)}`)).rejects.toSatisfy(isNotFound);
    expect(await h.store.leases.list(ctxOf('lazy'))).toEqual([]);
    expect(await h.store.namespaces.list()).toEqual([]);

    await putBlob(h.store.content, ctxOf('lazy'), 'hello');
    expect(await h.store.namespaces.list()).toEqual(['lazy']);
    expect(await h.store.namespaces.labels('lazy')).toEqual({});

    await h.store.leases.create(ctxOf('leasy'), { id: 'l1' });
    await (await h.store.content.writer(ctxOf('ingesty'), { ref: 'r' })).close();
    await h.store.namespaces.update('updated', { a: 'b' }, ['labels.a']);
    expect((await h.store.namespaces.list()).sort()).toEqual(['ingesty', 'lazy', 'leasy', 'updated']);
    expect(await h.store.namespaces.labels('updated')).toEqual({ a: 'b' });
  });

  it('refuses to delete a namespace that still holds something, naming what', async () => {
    const ns = h.store.namespaces;
    const ctx = ctxOf('busy');
    const digest = await putBlob(h.store.content, ctx, 'data');
    await h.store.leases.create(ctx, { id: 'l' });
    await (await h.store.content.writer(ctx, { ref: 'pending' })).close();

    const err = await ns.delete('busy').catch((e: unknown) => e);
    expect(isFailedPrecondition(err)).toBe(true);
    expect((err as Error).message).toBe('namespace "busy" must be empty, but it still has blobs');

    // Leases and ingests do not keep a namespace alive (containerd's rule); they go with it.
    await h.store.content.delete(ctx, digest);
    await ns.delete('busy');
    expect(await ns.list()).toEqual([]);
    expect(await h.store.leases.list(ctx)).toEqual([]);
    expect(await h.store.content.listStatuses(ctx)).toEqual([]);
  });

  it('counts images, containers and snapshots records as contents', async () => {
    const db = h.store.database;
    await h.store.namespaces.create('full');
    const now = Date.now();
    await db.update((r) => {
      r.put(keys.image('full', 'docker.io/library/busybox:latest'), {
        target: { digest: `sha256:${'1'.repeat(64)}`, mediaType: 'x', size: 1 },
        labels: {},
        createdAt: now,
        updatedAt: now,
      });
      r.put(keys.container('full', 'c1'), { labels: {}, createdAt: now, updatedAt: now });
      r.put(keys.snapshot('full', 'overlayfs', 'k1'), { name: 'full/1/k1', labels: {}, createdAt: now, updatedAt: now });
    });
    await expect(h.store.namespaces.delete('full')).rejects.toThrow(
      'namespace "full" must be empty, but it still has images, containers, snapshots on "overlayfs" snapshotter',
    );
  });

  it('keeps namespaces and labels across a reopen', async () => {
    await h.store.namespaces.create('persist', { k: 'v' });
    await h.reopen();
    expect(await h.store.namespaces.list()).toEqual(['persist']);
    expect(await h.store.namespaces.labels('persist')).toEqual({ k: 'v' });
  });
});
