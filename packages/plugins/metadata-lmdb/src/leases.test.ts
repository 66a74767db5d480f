import { describe, expect, it } from 'vitest';
import { isAlreadyExists, isInvalidArgument, isNotFound, isNotImplemented } from '@berth/core';
import { useHarness, ctxOf, putBlob, sha256, type Harness } from './testing-fixtures/harness.js';

describe('leases', () => {
  let h: Harness;
  const ctx = ctxOf('default');

  useHarness((created) => (h = created));

  it('creates, lists and deletes leases per namespace', async () => {
    const before = Date.now();
    const lease = await h.store.leases.create(ctx, { id: '942640046-l-ok', labels: { 'containerd.io/gc.expire': '2999-01-01T00:00:00Z', e: '' } });
    expect(lease.id).toBe('942640046-l-ok');
    expect(lease.labels).toEqual({ 'containerd.io/gc.expire': '2999-01-01T00:00:00Z' });
    expect(lease.createdAt.getTime()).toBeGreaterThanOrEqual(before);
    await h.store.leases.create(ctx, { id: 'other', labels: { team: 'x' } });

    expect((await h.store.leases.list(ctx)).map((l) => l.id).sort()).toEqual(['942640046-l-ok', 'other']);
    expect(await h.store.leases.list(ctxOf('elsewhere'))).toEqual([]);
    const [listed] = await h.store.leases.list(ctx, ['id==942640046-l-ok']);
    expect(listed).toEqual(lease);
    expect((await h.store.leases.list(ctx, ['labels.team==x'])).map((l) => l.id)).toEqual(['other']);

    await expect(h.store.leases.create(ctx, { id: 'other' })).rejects.toThrow('lease "other": already exists');
    await expect(h.store.leases.create(ctx, { id: 'other' })).rejects.toSatisfy(isAlreadyExists);
    // The same id is free in another namespace.
    await h.store.leases.create(ctxOf('elsewhere'), { id: 'other' });

    await h.store.leases.delete(ctx, 'other');
    await expect(h.store.leases.delete(ctx, 'other')).rejects.toSatisfy(isNotFound);
    expect((await h.store.leases.list(ctx)).map((l) => l.id)).toEqual(['942640046-l-ok']);
  });

  it('validates ids, labels and filters', async () => {
    await expect(h.store.leases.create(ctx, { id: '' })).rejects.toSatisfy(isInvalidArgument);
    await expect(h.store.leases.create(ctx, { id: 'x', labels: { k: 'v'.repeat(5000) } })).rejects.toSatisfy(isInvalidArgument);
    await expect(h.store.leases.create(ctx, { id: 'x', labels: { '': 'v' } })).rejects.toThrow('label key required');
    await expect(h.store.leases.list(ctx, ['id=='])).rejects.toSatisfy(isInvalidArgument);
    // containerd's random ids may carry `_` and `-` next to each other: not rejected.
    await h.store.leases.create(ctx, { id: '12345-a_-b' });
  });

  it('lists from one snapshot, in slices that let the event loop run, whatever the filter', async () => {
    // More leases than one LMDB batch (256), and a filter whose every match runs on the worker thread, so that
    // the list spans many event-loop turns and the lease created meanwhile commits before it ends.
    const ids = Array.from({ length: 300 }, (_, i) => `l-${String(i).padStart(4, '0')}`);
    await Promise.all(ids.map((id) => h.store.leases.create(ctx, { id, labels: { a: 'a'.repeat(200) + '!' } })));
    const costly = 'labels.a~="(?:a?){150}a{150}$"';
    let worst = 0;
    let last = performance.now();
    const ticker = setInterval(() => {
      const now = performance.now();
      worst = Math.max(worst, now - last);
      last = now;
    }, 1);
    try {
      const listing = h.store.leases.list(ctx, [costly]);
      let lateCommitted = false;
      const late = h.store.leases.create(ctx, { id: 'l-late', labels: { a: 'a'.repeat(200) } }).then(() => {
        lateCommitted = true;
      });
      const listed = await listing;
      expect(lateCommitted).toBe(true); // it committed while the list was running...
      expect(listed).toEqual([]); // ...and the list did not see it
      await late;
    } finally {
      clearInterval(ticker);
    }
    expect((await h.store.leases.list(ctx, [costly])).map((l) => l.id)).toEqual(['l-late']);
    expect((await h.store.leases.list(ctx, ['labels.a~="(a+)+!$"'])).map((l) => l.id)).toEqual(ids);
    expect(worst).toBeLessThan(250);
  });

  it('adds, lists and removes resources', async () => {
    await h.store.leases.create(ctx, { id: 'l' });
    const digest = sha256('resource');
    await h.store.leases.addResource(ctx, 'l', { id: digest, type: 'content' });
    await h.store.leases.addResource(ctx, 'l', { id: 'ingest-ref', type: 'ingests' });
    await h.store.leases.addResource(ctx, 'l', { id: 'default/3/key', type: 'snapshots/overlayfs' });
    await h.store.leases.addResource(ctx, 'l', { id: digest, type: 'content' });
    expect(await h.store.leases.listResources(ctx, 'l')).toEqual([
      { id: digest, type: 'content' },
      { id: 'ingest-ref', type: 'ingests' },
      { id: 'default/3/key', type: 'snapshots/overlayfs' },
    ]);
    await h.store.leases.deleteResource(ctx, 'l', { id: 'ingest-ref', type: 'ingests' });
    expect((await h.store.leases.listResources(ctx, 'l')).map((r) => r.type)).toEqual(['content', 'snapshots/overlayfs']);

    await expect(h.store.leases.addResource(ctx, 'nope', { id: digest, type: 'content' })).rejects.toSatisfy(isNotFound);
    await expect(h.store.leases.listResources(ctx, 'nope')).rejects.toSatisfy(isNotFound);
    await expect(h.store.leases.deleteResource(ctx, 'nope', { id: digest, type: 'content' })).rejects.toSatisfy(isNotFound);
    await expect(h.store.leases.addResource(ctx, 'l', { id: 'not-a-digest', type: 'content' })).rejects.toSatisfy(isInvalidArgument);
    await expect(h.store.leases.addResource(ctx, 'l', { id: 'k', type: 'snapshots' })).rejects.toSatisfy(isInvalidArgument);
    await expect(h.store.leases.addResource(ctx, 'l', { id: 'k', type: 'content/x' })).rejects.toSatisfy(isInvalidArgument);
    await expect(h.store.leases.addResource(ctx, 'l', { id: 'k', type: 'images' })).rejects.toSatisfy(isNotImplemented);

    // Deleting the lease drops its resources with it.
    await h.store.leases.delete(ctx, 'l');
    await h.store.leases.create(ctx, { id: 'l' });
    expect(await h.store.leases.listResources(ctx, 'l')).toEqual([]);
  });

  it('adds what is created under ctx.lease to the lease, in the same transaction', async () => {
    await h.store.leases.create(ctx, { id: 'pull' });
    const leased = ctxOf('default', 'pull');

    const w = await h.store.content.writer(leased, { ref: 'layer-1', total: 5 });
    expect(await h.store.leases.listResources(ctx, 'pull')).toEqual([{ id: 'layer-1', type: 'ingests' }]);
    await w.write(Buffer.from('layer'));
    await w.commit(5, sha256('layer'));
    // On commit the ingest leaves the lease and the blob joins it.
    expect(await h.store.leases.listResources(ctx, 'pull')).toEqual([{ id: sha256('layer'), type: 'content' }]);

    // A writer for content that already exists still leases it (AlreadyExists is success for clients).
    const config = await putBlob(h.store.content, ctx, 'config');
    await expect(h.store.content.writer(leased, { ref: 'config', expected: config })).rejects.toSatisfy(isAlreadyExists);
    expect((await h.store.leases.listResources(ctx, 'pull')).map((r) => r.id).sort()).toEqual([config, sha256('layer')].sort());

    // Aborting a leased ingest removes it from the lease.
    const w2 = await h.store.content.writer(leased, { ref: 'abandoned' });
    await w2.close();
    await h.store.content.abort(leased, 'abandoned');
    expect((await h.store.leases.listResources(ctx, 'pull')).some((r) => r.type === 'ingests')).toBe(false);

    // Deleting leased content removes it from the context's lease.
    await h.store.content.delete(leased, config);
    expect(await h.store.leases.listResources(ctx, 'pull')).toEqual([{ id: sha256('layer'), type: 'content' }]);
  });

  it('fails with NotFound when ctx.lease does not exist, leaving nothing behind', async () => {
    const ghost = ctxOf('default', 'ghost');
    await expect(h.store.content.writer(ghost, { ref: 'r' })).rejects.toThrow('lease "ghost": not found');
    await expect(h.store.content.status(ctxOf('default'), 'r')).rejects.toSatisfy(isNotFound);
    expect(await h.raw.listStatuses(ghost)).toEqual([]);

    // A lease deleted while a writer is open: the commit fails before the backend commits.
    await h.store.leases.create(ctx, { id: 'short' });
    const w = await h.store.content.writer(ctxOf('default', 'short'), { ref: 'r2' });
    await w.write(Buffer.from('data'));
    await h.store.leases.delete(ctx, 'short');
    await expect(w.commit(4, sha256('data'))).rejects.toSatisfy(isNotFound);
    await expect(h.store.content.info(ctx, sha256('data'))).rejects.toSatisfy(isNotFound);
    await expect(h.raw.info(ctx, sha256('data'))).rejects.toSatisfy(isNotFound);
  });

  it('keeps leases and their resources across a reopen', async () => {
    await h.store.leases.create(ctx, { id: 'kept', labels: { a: 'b' } });
    await h.store.leases.addResource(ctx, 'kept', { id: 'x', type: 'ingests' });
    await h.reopen();
    expect((await h.store.leases.list(ctx)).map((l) => [l.id, l.labels])).toEqual([['kept', { a: 'b' }]]);
    expect(await h.store.leases.listResources(ctx, 'kept')).toEqual([{ id: 'x', type: 'ingests' }]);
  });
});
