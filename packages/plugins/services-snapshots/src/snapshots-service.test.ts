import { messageCodec, type containerd } from '@berth/api';
import { eventsToken, leasesToken, type Envelope } from '@berth/core';
import { failureOf, rpcContext, type TestHost } from '@berth/core/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { LIST_BATCH_COUNT } from './snapshots-service.js';
import { bootSnapshots, type Handlers } from './testing-fixtures/host.js';

const NS = 'testing';
const rpc = (namespace = NS, lease?: string) => rpcContext({ namespace, ...(lease ? { lease } : {}) });
const SN = 'mem';

/** A request as the wire decodes it (every field present), from the fields a client sets. */
function decoded<N extends 'PrepareSnapshotRequest' | 'CommitSnapshotRequest' | 'UpdateSnapshotRequest'>(name: N, input: object) {
  const codec = messageCodec(`containerd.services.snapshots.v1.${name}`);
  return codec.decode(codec.encode(input as never)) as never;
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

describe('SnapshotsService', () => {
  let host: TestHost | undefined;
  afterEach(async () => {
    await host?.close();
    host = undefined;
  });

  async function boot(): Promise<Handlers> {
    const booted = await bootSnapshots();
    host = booted.host;
    return booted.handlers;
  }

  it('prepares, commits, views, stats and removes through the snapshotter the request names', async () => {
    const h = await boot();
    const prepared = await h.Prepare(decoded('PrepareSnapshotRequest', { snapshotter: SN, key: 'k1', labels: { 'containerd.io/gc.root': 'now' } }), rpc());
    expect(prepared.mounts).toEqual([{ type: 'bind', source: '/fake/1/fs', options: ['rw', 'rbind'] }]);
    await h.Commit(decoded('CommitSnapshotRequest', { snapshotter: SN, name: 'c1', key: 'k1' }), rpc());
    const view = await h.View({ snapshotter: SN, key: 'v1', parent: 'c1', labels: {} }, rpc());
    expect(view.mounts?.[0]?.options).toEqual(['ro', 'rbind']);
    const { info } = await h.Stat({ snapshotter: SN, key: 'v1' }, rpc());
    expect(info).toMatchObject({ name: 'v1', parent: 'c1', kind: 'VIEW', labels: {} });
    expect(Number((info?.created_at as { seconds: number }).seconds)).toBeGreaterThan(0);
    expect(await h.Mounts({ snapshotter: SN, key: 'v1' }, rpc())).toEqual({ mounts: view.mounts });
    expect(await h.Usage({ snapshotter: SN, key: 'v1' }, rpc())).toEqual({ size: 2000, inodes: 2 });
    await h.Remove({ snapshotter: SN, key: 'v1' }, rpc());
    expect((await failureOf(h.Stat({ snapshotter: SN, key: 'v1' }, rpc()))).errdef).toBe('not-found');
    expect((await failureOf(h.Stat({ snapshotter: SN, key: 'c1' }, rpc('other')))).errdef).toBe('not-found');
  });

  it('answers containerd errors for a missing or unknown snapshotter and a missing namespace', async () => {
    const h = await boot();
    expect(await failureOf(h.Stat({ snapshotter: '', key: 'k' }, rpc()))).toEqual({ errdef: 'invalid-argument', message: 'snapshotter argument missing' });
    expect(await failureOf(h.Prepare(decoded('PrepareSnapshotRequest', { snapshotter: 'zfs', key: 'k' }), rpc()))).toEqual({
      errdef: 'invalid-argument',
      message: 'snapshotter not loaded: zfs',
    });
    expect((await failureOf(collect(h.List({ snapshotter: 'zfs', filters: [] }, rpc()) as AsyncIterable<unknown>))).errdef).toBe('invalid-argument');
    expect((await failureOf(h.Stat({ snapshotter: SN, key: 'k' }, rpc('')))).errdef).toBe('failed-precondition');
  });

  it('updates labels by the field mask, as ctr snapshots label does, and refuses other paths', async () => {
    const h = await boot();
    await h.Prepare(decoded('PrepareSnapshotRequest', { snapshotter: SN, key: 'k', labels: { a: '1', b: '2' } }), rpc());
    const req = (labels: Record<string, string>, paths?: string[]) =>
      decoded('UpdateSnapshotRequest', { snapshotter: SN, info: { name: 'k', kind: 'ACTIVE', labels }, ...(paths ? { update_mask: { paths } } : {}) });
    expect((await h.Update(req({ c: '3' }, ['labels.c', 'labels.a']), rpc())).info?.labels).toEqual({ b: '2', c: '3' });
    expect((await h.Update(req({ only: 'x' }), rpc())).info?.labels).toEqual({ only: 'x' });
    expect(await failureOf(h.Update(req({}, ['parent']), rpc()))).toEqual({ errdef: 'invalid-argument', message: 'cannot update "parent" field on snapshot "k"' });
    expect((await failureOf(h.Update(decoded('UpdateSnapshotRequest', { snapshotter: SN }), rpc()))).errdef).toBe('invalid-argument');
  });

  it('streams List in batches of at most 100, with filters', async () => {
    const h = await boot();
    const total = LIST_BATCH_COUNT * 2 + 5;
    for (let i = 0; i < total; i++) {
      await h.Prepare(decoded('PrepareSnapshotRequest', { snapshotter: SN, key: `k${String(i).padStart(3, '0')}`, labels: i % 2 ? { odd: 'yes' } : {} }), rpc());
    }
    const batches = (await collect(h.List({ snapshotter: SN, filters: [] }, rpc()) as AsyncIterable<containerd.services.snapshots.v1.ListSnapshotsResponseInput>)).map(
      (b) => b.info ?? [],
    );
    expect(batches.map((b) => b.length)).toEqual([100, 100, 5]);
    expect(batches.flat().every((i) => i.kind === 'ACTIVE')).toBe(true);
    const odd = (await collect(h.List({ snapshotter: SN, filters: ['labels.odd==yes'] }, rpc()) as AsyncIterable<containerd.services.snapshots.v1.ListSnapshotsResponseInput>)).flatMap(
      (b) => b.info ?? [],
    );
    expect(odd).toHaveLength(Math.floor(total / 2));
    expect(await collect(h.List({ snapshotter: SN, filters: [] }, rpc('empty')) as AsyncIterable<unknown>)).toEqual([]);
  });

  it('puts what it prepares into the lease of the request, and publishes /snapshot/* events', async () => {
    const h = await boot();
    const abort = new AbortController();
    const seen: Envelope[] = [];
    const reading = (async () => {
      for await (const e of host!.host.get(eventsToken).subscribe(['topic~="^/snapshot/"'], abort.signal)) seen.push(e);
    })();
    await host!.host.get(leasesToken).create({ namespace: NS }, { id: 'l' });
    await h.Prepare(decoded('PrepareSnapshotRequest', { snapshotter: SN, key: 'k' }), rpc(NS, 'l'));
    expect(await host!.host.get(leasesToken).listResources({ namespace: NS }, 'l')).toEqual([{ id: 'k', type: 'snapshots/mem' }]);
    await h.Commit(decoded('CommitSnapshotRequest', { snapshotter: SN, name: 'c', key: 'k' }), rpc(NS, 'l'));
    await h.Remove({ snapshotter: SN, key: 'c' }, rpc());
    await new Promise((r) => setTimeout(r, 20));
    abort.abort();
    await reading.catch(() => undefined);
    expect(seen.map((e) => [e.topic, e.event.typeUrl, e.fields])).toEqual([
      ['/snapshot/prepare', 'containerd.events.SnapshotPrepare', { key: 'k', parent: '' }],
      ['/snapshot/commit', 'containerd.events.SnapshotCommit', { key: 'k', name: 'c' }],
      ['/snapshot/remove', 'containerd.events.SnapshotRemove', { key: 'c' }],
    ]);
  });

  it('runs Cleanup: backend snapshots no record names go, then the backend cleans up', async () => {
    const booted = await bootSnapshots();
    host = booted.host;
    const now = new Date();
    booted.raw.snapshots.set('stray', { id: 7, kind: 'active', parent: '', labels: {}, createdAt: now, updatedAt: now });
    await booted.handlers.Prepare(decoded('PrepareSnapshotRequest', { snapshotter: SN, key: 'kept' }), rpc());
    await booted.handlers.Cleanup({ snapshotter: SN }, rpc());
    expect([...booted.raw.snapshots.keys()]).toEqual([`${NS}/1/kept`]);
    expect(booted.raw.cleanups).toBe(1);
  });
});
