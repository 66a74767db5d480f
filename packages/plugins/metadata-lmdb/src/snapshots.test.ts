import { afterEach, describe, expect, it } from 'vitest';
import { AlreadyExistsError, type AnyValue, type EventPublisher, type OpContext, type Snapshotter } from '@berth/core';
import { expectFailure } from '@berth/core/testing';
import { keys, type ContainerRecord } from './schema.js';
import { inheritedLabels } from './snapshots.js';
import { createHarness, ctxOf, putBlob, type Harness } from './testing-fixtures/harness.js';
import { MemorySnapshotter } from '@berth/core/testing';

const ctx = ctxOf('default');

class Recorder implements EventPublisher {
  readonly events: Array<{ namespace: string; topic: string; typeUrl: string; fields: unknown }> = [];
  async publish(namespace: string, topic: string, event: AnyValue, fields?: Readonly<Record<string, unknown>>): Promise<void> {
    this.events.push({ namespace, topic, typeUrl: event.typeUrl, fields });
  }
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

describe('namespaced snapshotters', () => {
  let h: Harness | undefined;
  let raw: MemorySnapshotter;
  let events: Recorder;
  afterEach(async () => {
    await h?.cleanup();
    h = undefined;
  });

  async function open(): Promise<Snapshotter> {
    raw = new MemorySnapshotter();
    events = new Recorder();
    h = await createHarness({ backend: 'memory', snapshotters: new Map([['mem', raw]]), events });
    return h.store.snapshotters.get('mem');
  }

  it('names backend snapshots <namespace>/<counter>/<key> and shows each namespace its own keys', async () => {
    const sn = await open();
    await sn.prepare(ctx, 'k1', '');
    await sn.commit(ctx, 'c1', 'k1');
    await sn.prepare(ctx, 'k2', 'c1');
    await sn.view(ctx, 'v1', 'c1');
    await sn.prepare(ctxOf('other'), 'k1', '');
    expect([...raw.snapshots.keys()].sort()).toEqual(['default/2/c1', 'default/3/k2', 'default/4/v1', 'other/5/k1']);
    expect(raw.snapshots.get('default/3/k2')?.parent).toBe('default/2/c1');

    const c1 = await sn.stat(ctx, 'c1');
    expect(c1).toMatchObject({ kind: 'committed', name: 'c1', parent: '' });
    expect(await sn.stat(ctx, 'k2')).toMatchObject({ kind: 'active', name: 'k2', parent: 'c1' });
    expect(await sn.stat(ctx, 'v1')).toMatchObject({ kind: 'view', name: 'v1', parent: 'c1' });
    await expectFailure(sn.stat(ctx, 'k1'), 'not-found', 'snapshot k1 does not exist');
    await expectFailure(sn.stat(ctxOf('other'), 'c1'), 'not-found');
    expect((await collect(sn.walk(ctx))).map((i) => i.name).sort()).toEqual(['c1', 'k2', 'v1']);
    expect((await collect(sn.walk(ctxOf('other')))).map((i) => [i.name, i.kind])).toEqual([['k1', 'active']]);
    expect(await sn.mounts(ctx, 'v1')).toEqual([{ type: 'bind', source: '/fake/3/fs', options: ['ro', 'rbind'] }]);
    expect(await sn.usage(ctx, 'k2')).toEqual({ size: 2000, inodes: 2 });
  });

  it('refuses bad names, missing or active parents and missing leases before the backend sees anything', async () => {
    const sn = await open();
    await sn.prepare(ctx, 'active', '');
    const before = raw.calls.filter((c) => c.method === 'prepare' || c.method === 'view').length;
    await expectFailure(sn.prepare(ctx, 'active', ''), 'already-exists', 'snapshot "active"');
    await expectFailure(sn.prepare(ctx, 'x', 'nope'), 'not-found', 'parent snapshot nope does not exist');
    await expectFailure(sn.view(ctx, 'x', 'active'), 'invalid-argument', 'parent snapshot active is not committed');
    await expectFailure(sn.prepare(ctxOf('other'), 'x', 'active'), 'not-found');
    await expectFailure(sn.prepare(ctx, '', ''), 'invalid-argument');
    await expectFailure(sn.prepare(ctx, 'a\0b', ''), 'invalid-argument');
    await expectFailure(sn.prepare(ctx, 'x', '', { labels: { '': 'v' } }), 'invalid-argument');
    await expectFailure(sn.prepare(ctxOf('default', 'no-such-lease'), 'x', ''), 'not-found', 'lease "no-such-lease"');
    await expectFailure(sn.prepare(ctxOf(''), 'x', ''), 'invalid-argument', 'namespace is required');
    expect(raw.calls.filter((c) => c.method === 'prepare' || c.method === 'view').length).toBe(before);
    expect([...raw.snapshots.keys()]).toEqual(['default/1/active']);
  });

  it('commits with the commit labels only, moves the child link and refuses what containerd refuses', async () => {
    const sn = await open();
    await sn.prepare(ctx, 'base', '');
    await sn.commit(ctx, 'c1', 'base');
    await sn.prepare(ctx, 'k2', 'c1', { labels: { team: 'a' } });
    await sn.commit(ctx, 'c2', 'k2', { labels: { 'containerd.io/gc.root': 'now', 'containerd.io/snapshot/x': 'y' } });
    expect(await sn.stat(ctx, 'c2')).toMatchObject({ kind: 'committed', parent: 'c1', labels: { 'containerd.io/gc.root': 'now', 'containerd.io/snapshot/x': 'y' } });
    // Only inherited labels reach the backend.
    expect(raw.calls.find((c) => c.method === 'commit' && String(c.args[0]).endsWith('/c2'))?.args[2]).toEqual({ labels: { 'containerd.io/snapshot/x': 'y' } });
    await expectFailure(sn.stat(ctx, 'k2'), 'not-found');
    // c1's child is now c2, not k2.
    await expectFailure(sn.remove(ctx, 'c1'), 'failed-precondition', 'cannot remove snapshot with child');
    await sn.remove(ctx, 'c2');
    await sn.remove(ctx, 'c1');

    await sn.prepare(ctx, 'a', '');
    await sn.prepare(ctx, 'b', '');
    await sn.commit(ctx, 'taken', 'a');
    await expectFailure(sn.commit(ctx, 'taken', 'b'), 'already-exists', 'snapshot "taken"');
    await expectFailure(sn.commit(ctx, 'b', 'b'), 'already-exists');
    await expectFailure(sn.commit(ctx, 'n', 'missing'), 'not-found', 'snapshot missing does not exist');
    await sn.view(ctx, 'v', 'taken');
    await expectFailure(sn.commit(ctx, 'n', 'v'), 'failed-precondition', 'snapshot v is not active');
    expect((await sn.stat(ctx, 'b')).kind).toBe('active');
  });

  it('updates labels by field path, passes the inherited ones to the backend and keeps the times', async () => {
    const sn = await open();
    await sn.prepare(ctx, 'k', '', { labels: { a: '1', 'containerd.io/snapshot/keep': 'x', 'containerd.io/gc.root': 't' } });
    expect(raw.calls.find((c) => c.method === 'prepare')?.args[2]).toEqual({ labels: { 'containerd.io/snapshot/keep': 'x' } });
    const created = await sn.stat(ctx, 'k');
    await new Promise((r) => setTimeout(r, 5));
    const updated = await sn.update(ctx, { name: 'k', labels: { b: '2', a: '' } }, ['labels.b', 'labels.a']);
    expect(updated.labels).toEqual({ b: '2', 'containerd.io/snapshot/keep': 'x', 'containerd.io/gc.root': 't' });
    expect(updated.createdAt).toEqual(created.createdAt);
    expect(updated.updatedAt.getTime()).toBeGreaterThan(created.updatedAt.getTime());
    expect(await sn.stat(ctx, 'k')).toMatchObject({ labels: updated.labels, updatedAt: updated.updatedAt });

    const replaced = await sn.update(ctx, { name: 'k', labels: { 'containerd.io/snapshot/new': 'n', only: 'me' } });
    expect(replaced.labels).toEqual({ 'containerd.io/snapshot/new': 'n', only: 'me' });
    expect(raw.snapshots.get('default/1/k')?.labels).toEqual({ 'containerd.io/snapshot/new': 'n' });
    await expectFailure(sn.update(ctx, { name: 'k', labels: {} }, ['parent']), 'invalid-argument', 'cannot update "parent" field');
    await expectFailure(sn.update(ctx, { name: 'nope', labels: {} }), 'not-found');
    await expectFailure(sn.update(ctx, { name: '', labels: {} }), 'invalid-argument');
    expect(inheritedLabels({ 'containerd.io/snapshot.ref': 'r', 'containerd.io/snapshotter': 'no', x: 'y' })).toEqual({ 'containerd.io/snapshot.ref': 'r' });
  });

  it('walks with containerd filters over kind, name, parent and labels, leaving out records the backend lost', async () => {
    const sn = await open();
    await sn.prepare(ctx, 'k1', '');
    await sn.commit(ctx, 'c1', 'k1', { labels: { tier: 'base' } });
    await sn.prepare(ctx, 'k2', 'c1', { labels: { tier: 'top' } });
    await sn.view(ctx, 'v1', 'c1');
    const names = async (...filters: string[]) => (await collect(sn.walk(ctx, filters))).map((i) => i.name).sort();
    expect(await names('kind==committed')).toEqual(['c1']);
    expect(await names('kind==view', 'kind==active')).toEqual(['k2', 'v1']);
    expect(await names('parent==c1')).toEqual(['k2', 'v1']);
    expect(await names('labels.tier==top')).toEqual(['k2']);
    expect(await names('name~=^k')).toEqual(['k2']);
    await expectFailure(collect(sn.walk(ctx, ['kind=='])), 'invalid-argument');
    raw.snapshots.delete('default/4/v1');
    expect(await names()).toEqual(['c1', 'k2']);
  });

  it('puts what it makes into the context lease and moves it on commit', async () => {
    const sn = await open();
    await h!.store.leases.create(ctx, { id: 'l' });
    const leased = ctxOf('default', 'l');
    await sn.prepare(leased, 'k', '');
    expect(await h!.store.leases.listResources(ctx, 'l')).toEqual([{ id: 'k', type: 'snapshots/mem' }]);
    await sn.commit(leased, 'c', 'k');
    expect(await h!.store.leases.listResources(ctx, 'l')).toEqual([{ id: 'c', type: 'snapshots/mem' }]);
    await sn.view(leased, 'v', 'c');
    await sn.remove(leased, 'v');
    expect(await h!.store.leases.listResources(ctx, 'l')).toEqual([{ id: 'c', type: 'snapshots/mem' }]);
  });

  it('publishes /snapshot/prepare, /snapshot/commit and /snapshot/remove (no event for a view)', async () => {
    const sn = await open();
    await sn.prepare(ctx, 'k', '');
    await sn.commit(ctx, 'c', 'k');
    await sn.view(ctx, 'v', 'c');
    await sn.prepare(ctxOf('ns2'), 'k2', '');
    await sn.remove(ctx, 'v');
    await expectFailure(sn.remove(ctx, 'v'), 'not-found');
    expect(events.events).toEqual([
      { namespace: 'default', topic: '/snapshot/prepare', typeUrl: 'containerd.events.SnapshotPrepare', fields: { key: 'k', parent: '' } },
      { namespace: 'default', topic: '/snapshot/commit', typeUrl: 'containerd.events.SnapshotCommit', fields: { key: 'k', name: 'c' } },
      { namespace: 'ns2', topic: '/snapshot/prepare', typeUrl: 'containerd.events.SnapshotPrepare', fields: { key: 'k2', parent: '' } },
      { namespace: 'default', topic: '/snapshot/remove', typeUrl: 'containerd.events.SnapshotRemove', fields: { key: 'v' } },
    ]);
  });

  it('removes the backend snapshot again when the record cannot be written', async () => {
    const sn = await open();
    await h!.store.leases.create(ctx, { id: 'short' });
    // The lease goes while the backend prepares: the record's transaction then fails.
    const prepare = raw.prepare.bind(raw);
    raw.prepare = async (...args) => {
      const mounts = await prepare(...args);
      await h!.store.leases.delete(ctx, 'short');
      return mounts;
    };
    await expectFailure(sn.prepare(ctxOf('default', 'short'), 'k', ''), 'not-found', 'lease "short"');
    expect(raw.snapshots.size).toBe(0);
    expect(raw.keysOf('remove')).toEqual(['default/1/k']);
    await expectFailure(sn.stat(ctx, 'k'), 'not-found');
  });

  it('serialises commits to one name: one wins, the other is AlreadyExists and the backend has one snapshot', async () => {
    const sn = await open();
    await sn.prepare(ctx, 'a', '');
    await sn.prepare(ctx, 'b', '');
    const results = await Promise.allSettled([sn.commit(ctx, 'same', 'a'), sn.commit(ctx, 'same', 'b')]);
    expect(results.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected']);
    expect(((results.find((r) => r.status === 'rejected') as PromiseRejectedResult).reason as Error).message).toContain('"same"');
    expect([...raw.snapshots.values()].filter((e) => e.kind === 'committed')).toHaveLength(1);
    expect(raw.keysOf('commit')).toHaveLength(1);
  });

  it('links a target the backend already has (containerd.io/snapshot.ref) and says AlreadyExists', async () => {
    const sn = await open();
    await sn.prepare(ctx, 'p', '');
    await sn.commit(ctx, 'parent', 'p');
    // A remote snapshotter's backend snapshot, committed with the ref label on the parent's backend key.
    const now = new Date();
    raw.snapshots.set('remote-layer', { id: 99, kind: 'committed', parent: 'default/2/parent', labels: { 'containerd.io/snapshot.ref': 'layer' }, createdAt: now, updatedAt: now });
    raw.fail('prepare', new AlreadyExistsError('target exists'));
    await expectFailure(sn.prepare(ctx, 'extract', 'parent', { labels: { 'containerd.io/snapshot.ref': 'layer', x: 'y' } }), 'already-exists', 'target snapshot "layer" from snapshotter');
    expect(await sn.stat(ctx, 'layer')).toMatchObject({ kind: 'committed', parent: 'parent', labels: { 'containerd.io/snapshot.ref': 'layer', x: 'y' } });
    await expectFailure(sn.stat(ctx, 'extract'), 'not-found');
    // The target is there now: a second request is refused up front.
    await expectFailure(sn.prepare(ctx, 'extract2', 'parent', { labels: { 'containerd.io/snapshot.ref': 'layer' } }), 'already-exists', 'target snapshot "layer"');
    // Without a target an AlreadyExists from the backend is not what the caller should see.
    raw.fail('prepare', new AlreadyExistsError('odd'));
    await expectFailure(sn.prepare(ctx, 'plain', ''), 'unknown', 'unexpected error from snapshotter');
  });

  it('keeps the records across a reopen and never reuses a backend key', async () => {
    await open();
    await h!.store.snapshotters.get('mem').prepare(ctx, 'k', '');
    await h!.store.snapshotters.get('mem').remove(ctx, 'k');
    const store = await h!.reopen({ snapshotters: new Map([['mem', raw]]) });
    const sn = store.snapshotters.get('mem');
    await sn.prepare(ctx, 'k', '');
    expect(raw.keysOf('prepare')).toEqual(['default/1/k', 'default/2/k']);
    expect(store.snapshotters.names()).toEqual(['mem']);
    await expectFailure(Promise.resolve().then(() => store.snapshotters.get('zfs')), 'not-found', 'snapshotter zfs was not found');
  });

  it('answers Unavailable once closed', async () => {
    const sn = await open();
    await h!.store.close();
    await expectFailure(sn.prepare(ctx, 'k', ''), 'unavailable');
  });

  describe('garbage collection', () => {
    it('collects records no root holds, then their backend snapshots children first, then runs the backend cleanup', async () => {
      const sn = await open();
      const rooted = { labels: { 'containerd.io/gc.root': 'x' } };
      await sn.prepare(ctx, 'k1', '');
      await sn.commit(ctx, 'base', 'k1');
      await sn.prepare(ctx, 'k2', 'base');
      await sn.commit(ctx, 'mid', 'k2');
      await sn.prepare(ctx, 'top', 'mid', rooted); // keeps mid and base
      await sn.prepare(ctx, 'k3', '');
      await sn.commit(ctx, 'lone', 'k3');
      await sn.prepare(ctx, 'child', 'lone');
      const stats = await h!.store.garbageCollect();
      expect(stats.removed.snapshots).toBe(2);
      expect((await collect(sn.walk(ctx))).map((i) => i.name).sort()).toEqual(['base', 'mid', 'top']);
      expect(raw.keysOf('remove')).toEqual(['default/8/child', 'default/7/lone']);
      expect(raw.cleanups).toBe(1);
      // Nothing dirty, nothing to sweep.
      await h!.store.garbageCollect();
      expect(raw.cleanups).toBe(1);
    });

    it('keeps snapshots held by leases, containers, content labels and other snapshots, and drops the child link of what it removes', async () => {
      const sn = await open();
      const c = h!.store.content;
      await h!.store.leases.create(ctx, { id: 'l' });
      await sn.prepare(ctxOf('default', 'l'), 'leased', '');
      await sn.prepare(ctx, 'kc', '');
      await sn.commit(ctx, 'chain', 'kc');
      await putBlob(c, ctx, 'config', { labels: { 'containerd.io/gc.ref.snapshot.mem': 'chain', 'containerd.io/gc.root': 'x' } });
      await sn.prepare(ctx, 'rootfs', '');
      const now = Date.now();
      await h!.store.database.txn((r) =>
        r.put(keys.container('default', 'ctr1'), { snapshotter: 'mem', snapshotKey: 'rootfs', labels: {}, createdAt: now, updatedAt: now } satisfies ContainerRecord),
      );
      await sn.prepare(ctx, 'kl', '');
      await sn.commit(ctx, 'labelled', 'kl', { labels: { 'containerd.io/gc.ref.snapshot.mem/x': 'chain' } });
      await sn.view(ctx, 'gone', 'chain');

      await h!.store.garbageCollect();
      expect((await collect(sn.walk(ctx))).map((i) => i.name).sort()).toEqual(['chain', 'leased', 'rootfs']);
      // The view on chain went, and so did chain's link to it: chain is removable once nothing holds it.
      await h!.store.leases.delete(ctx, 'l');
      await h!.store.database.txn((r) => r.remove(keys.container('default', 'ctr1')));
      await sn.remove(ctx, 'chain');
      const stats = await h!.store.garbageCollect();
      expect(stats.removed.snapshots).toBe(3); // the records of leased and rootfs, and chain's backend snapshot
      expect(raw.snapshots.size).toBe(0);
    });

    it('removes backend snapshots no record names (a crash between backend and record) at the first collection and at cleanup', async () => {
      const sn = await open();
      await sn.prepare(ctx, 'kept', '', { labels: { 'containerd.io/gc.root': 'x' } });
      const now = new Date();
      raw.snapshots.set('default/999/orphan', { id: 50, kind: 'active', parent: '', labels: {}, createdAt: now, updatedAt: now });
      expect((await h!.store.garbageCollect()).removed.snapshots).toBe(1);
      expect([...raw.snapshots.keys()]).toEqual(['default/1/kept']);

      raw.snapshots.set('default/998/orphan', { id: 51, kind: 'active', parent: '', labels: {}, createdAt: now, updatedAt: now });
      // Records unchanged since the last collection: GC does not sweep the backend again ...
      await h!.store.garbageCollect();
      expect(raw.snapshots.size).toBe(2);
      // ... Cleanup always does.
      await sn.cleanup(ctx);
      expect([...raw.snapshots.keys()]).toEqual(['default/1/kept']);
      expect(raw.cleanups).toBe(2);
    });

    it('removes the backend snapshot of a removed record, and retries a failed backend sweep', async () => {
      const sn = await open();
      await sn.prepare(ctx, 'k', '', { labels: { 'containerd.io/gc.root': 'x' } });
      await h!.store.garbageCollect();
      await sn.remove(ctx, 'k');
      expect(raw.snapshots.size).toBe(1); // the backend snapshot waits for the collection
      raw.fail('walk', new Error('backend down'));
      await h!.store.garbageCollect();
      expect(raw.snapshots.size).toBe(1);
      const stats = await h!.store.garbageCollect();
      expect(stats.removed.snapshots).toBe(1);
      expect(raw.snapshots.size).toBe(0);
    });

    it('waits for a prepare in progress before it sweeps the backend', async () => {
      const sn = await open();
      await sn.prepare(ctx, 'marker', '');
      await sn.remove(ctx, 'marker'); // the snapshotter is dirty now
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      let reached!: () => void;
      const inBackend = new Promise<void>((r) => (reached = r));
      const prepare = raw.prepare.bind(raw);
      raw.prepare = async (...args) => {
        const mounts = await prepare(...args);
        reached();
        await gate; // the backend has it, the record is not written yet
        return mounts;
      };
      const pending = sn.prepare(ctx, 'slow', '', { labels: { 'containerd.io/gc.root': 'x' } });
      await inBackend;
      let done = false;
      const collecting = h!.store.garbageCollect().then((stats) => ((done = true), stats));
      await new Promise((r) => setTimeout(r, 50));
      expect(done).toBe(false);
      release();
      await pending;
      const stats = await collecting;
      expect(stats.removed.snapshots).toBe(1); // marker's backend snapshot only
      expect([...raw.snapshots.keys()]).toEqual(['default/2/slow']);
    });
  });
});
