// A full disk under a real LMDB environment on a small tmpfs: every failing commit reaches its caller as
// `write <path>: no space left on device` (nothing unhandled, so vitest would fail the run otherwise), nothing
// acknowledged is lost, nothing refused is half there, and commits work again once space is freed.
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { errdefOf, isNoSpace, nullLogger, wireMessageOf } from '@berth/core';
import { mountTmpfs, tmpfsUnavailable, type Tmpfs } from '@berth/core/testing';
import { LmdbMetadataStore } from './metadata-store.js';
import { ctxOf, openRawStore, putBlob, type RawStore } from './testing-fixtures/harness.js';

const MiB = 1 << 20;
const ctx = ctxOf('default');
const label = (i: number) => ({ [`k${i}`]: 'v'.repeat(1500) });

describe.skipIf(tmpfsUnavailable() !== undefined)('a full disk under LMDB', () => {
  let fs: Tmpfs | undefined;
  let store: LmdbMetadataStore | undefined;
  let raw: RawStore | undefined;

  afterEach(async () => {
    // Bounded, so that the unmount happens even when a broken store never finishes closing.
    const settle = (p: Promise<unknown> | undefined) =>
      Promise.race([p?.catch(() => undefined), new Promise((r) => setTimeout(r, 5000).unref())]);
    try {
      await settle(store?.close());
      await settle(raw?.close?.());
    } finally {
      store = raw = undefined;
      await fs?.dispose();
      fs = undefined;
    }
  });

  it('refuses writes with the disk error, keeps what it acknowledged and recovers without a reopen', async () => {
    fs = await mountTmpfs(4 * MiB);
    const path = join(fs.path, 'meta', 'meta.lmdb');
    raw = await openRawStore('local', join(fs.path, 'content'));
    const open = () => LmdbMetadataStore.open({ path, content: raw!, log: nullLogger });
    store = await open();
    // A GC root, so that a collection on the full disk has no reason to take it.
    const root = { 'containerd.io/gc.root': 'yes' };
    const digest = await putBlob(store.content, ctx, 'a blob committed before the disk filled', { labels: root });
    await store.namespaces.create('before', { team: 'berth' });
    await fs.fill({ leave: 256 * 1024 });

    const acknowledged: string[] = [];
    let failure: unknown;
    for (let i = 0; i < 2000 && failure === undefined; i++) {
      try {
        await store.leases.create(ctx, { id: `lease-${i}`, labels: label(i) });
        acknowledged.push(`lease-${i}`);
      } catch (err) {
        failure = err;
      }
    }
    expect(failure, 'the disk never filled up').toBeDefined();
    expect(errdefOf(failure)).toBe('unknown');
    expect(wireMessageOf(failure)).toBe(`write ${path}: no space left on device`);
    expect(acknowledged.length).toBeGreaterThan(0);

    // Every other kind of metadata write fails the same way, and leaves nothing behind.
    const big = { big: 'x'.repeat(3000) };
    const refusals = [
      store.namespaces.create('refused', big),
      store.namespaces.update('before', big, ['labels.big']),
      store.content.update(ctx, { digest, labels: { ...big } }, ['labels.big']),
      store.leases.create(ctxOf('elsewhere'), { id: 'refused', labels: label(-1) }),
    ];
    for (const result of await Promise.allSettled(refusals)) {
      expect(result.status).toBe('rejected');
      if (result.status === 'rejected') expect(isNoSpace(result.reason) || wireMessageOf(result.reason).endsWith('no space left on device')).toBe(true);
    }
    // GC on a full disk may fail, but it must not take anything acknowledged with it.
    await store.garbageCollect().catch(() => undefined);

    const check = async (s: LmdbMetadataStore) => {
      expect((await s.leases.list(ctx)).map((l) => l.id).sort()).toEqual([...acknowledged].sort());
      expect(await s.namespaces.list()).not.toContain('refused');
      expect(await s.namespaces.labels('before')).toEqual({ team: 'berth' });
      expect((await s.content.info(ctx, digest)).labels).toEqual(root);
      expect(await s.leases.list(ctxOf('elsewhere'))).toEqual([]);
    };
    await check(store);

    await fs.unfill();
    await store.leases.create(ctx, { id: 'after', labels: label(0) });
    await store.namespaces.create('refused', big);
    await store.content.update(ctx, { digest, labels: { ...big } }, ['labels.big']);
    acknowledged.push('after');

    await store.close();
    store = await open();
    expect((await store.leases.list(ctx)).map((l) => l.id).sort()).toEqual([...acknowledged].sort());
    expect(await store.namespaces.labels('refused')).toEqual(big);
    expect((await store.content.info(ctx, digest)).labels).toEqual({ ...root, ...big });
  });
});
