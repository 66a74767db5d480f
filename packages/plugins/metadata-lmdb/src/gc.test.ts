import { afterEach, describe, expect, it } from 'vitest';
import {
  UnknownError,
  isNotFound,
  type ContentInfo,
  type ContentStore,
  type ContentWriter,
  type OpContext,
  type RawContentStore,
  type WriterOptions,
} from '@berth/core';
import { keys, type ContainerRecord, type ImageRecord } from './schema.js';
import { mark, parseRfc3339 } from './gc.js';
import { createHarness, ctxOf, putBlob, sha256, type Harness, type RawStore } from './testing-fixtures/harness.js';

const ctx = ctxOf('default');

async function inNamespace(store: ContentStore, c: OpContext, digest: string): Promise<boolean> {
  return store.info(c, digest).then(
    () => true,
    (err: unknown) => {
      if (isNotFound(err)) return false;
      throw err;
    },
  );
}

async function inBackend(raw: RawStore, digest: string): Promise<boolean> {
  return raw.info(ctx, digest).then(
    () => true,
    (err: unknown) => {
      if (isNotFound(err)) return false;
      throw err;
    },
  );
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

/** Resolves true if `p` settles within a few event-loop turns and timers, false otherwise. */
async function settlesSoon(p: Promise<unknown>, ms = 50): Promise<boolean> {
  let settled = false;
  void p.then(
    () => (settled = true),
    () => (settled = true),
  );
  await new Promise((r) => setTimeout(r, ms));
  return settled;
}

/** A real store whose chosen operations pause at a gate: lets a test interleave them with a collection. */
function gated(raw: RawStore, hooks: { afterCommit?: () => Promise<void>; beforeList?: () => Promise<void> }): RawContentStore {
  const wrapWriter = (w: ContentWriter): ContentWriter => ({
    get ref() {
      return w.ref;
    },
    status: () => w.status(),
    digest: () => w.digest(),
    write: (d) => w.write(d),
    truncate: (s) => w.truncate(s),
    close: () => w.close(),
    async commit(size, expected, options) {
      await w.commit(size, expected, options);
      await hooks.afterCommit?.();
    },
  });
  return {
    scope: 'raw',
    info: (c, d) => raw.info(c, d),
    update: (c, i, f) => raw.update(c, i),
    async *list(c: OpContext): AsyncIterable<ContentInfo> {
      await hooks.beforeList?.();
      yield* raw.list(c);
    },
    delete: (c, d) => raw.delete(c, d),
    reader: (c, d) => raw.reader(c, d),
    status: (c, r) => raw.status(c, r),
    listStatuses: (c) => raw.listStatuses(c),
    abort: (c, r) => raw.abort(c, r),
    writer: async (c: OpContext, o: WriterOptions) => wrapWriter(await raw.writer(c, o)),
  };
}

describe('garbage collection', () => {
  let h: Harness;
  afterEach(async () => {
    await h?.cleanup();
  });

  it('keeps leased, referenced and gc.root content and removes the rest', async () => {
    h = await createHarness();
    const c = h.store.content;
    const child = await putBlob(c, ctx, 'child');
    const grandchild = await putBlob(c, ctx, 'grandchild');
    const viaSlash = await putBlob(c, ctx, 'via-slash');
    const parent = await putBlob(c, ctx, 'parent', {
      labels: { 'containerd.io/gc.ref.content.m.0': child, 'containerd.io/gc.ref.content/x': viaSlash },
    });
    await c.update(ctx, { digest: child, labels: { 'containerd.io/gc.ref.content': grandchild } }, ['labels.containerd.io/gc.ref.content']);
    const root = await putBlob(c, ctx, 'root', {
      labels: { 'containerd.io/gc.root': '2024-01-01T00:00:00Z', 'containerd.io/gc.ref.content.config': parent },
    });
    await h.store.leases.create(ctx, { id: 'keep' });
    const leased = await putBlob(c, ctxOf('default', 'keep'), 'leased');
    const garbage = await putBlob(c, ctx, 'garbage', { labels: { 'containerd.io/gc.ref.contentx': child } });
    const garbageChild = await putBlob(c, ctx, 'garbage-child');
    await c.update(ctx, { digest: garbage, labels: { 'containerd.io/gc.ref.content.l.0': garbageChild } }, ['labels.containerd.io/gc.ref.content.l.0']);

    const stats = await h.store.garbageCollect();
    expect(stats.removed).toEqual({ content: 2, ingests: 0, snapshots: 0, leases: 0 });
    expect(stats.startedAt).toBeInstanceOf(Date);
    expect(stats.durationMs).toBeGreaterThanOrEqual(0);

    for (const kept of [root, parent, child, grandchild, viaSlash, leased]) {
      expect(await inNamespace(c, ctx, kept), kept).toBe(true);
      expect(await inBackend(h.raw, kept)).toBe(true);
    }
    for (const gone of [garbage, garbageChild]) {
      expect(await inNamespace(c, ctx, gone)).toBe(false);
      expect(await inBackend(h.raw, gone)).toBe(false);
    }

    // Nothing left to collect: a second run removes nothing.
    expect((await h.store.garbageCollect()).removed).toEqual({ content: 0, ingests: 0, snapshots: 0, leases: 0 });
  });

  it('deletes bytes only when no namespace references the digest any more', async () => {
    h = await createHarness();
    const c = h.store.content;
    const digest = await putBlob(c, ctxOf('a'), 'shared', { labels: { 'containerd.io/gc.root': 'x' } });
    await putBlob(c, ctxOf('b'), 'shared');

    // Unreferenced in b: the record goes, the bytes stay for a.
    expect((await h.store.garbageCollect()).removed.content).toBe(1);
    expect(await inNamespace(c, ctxOf('b'), digest)).toBe(false);
    expect(await inNamespace(c, ctxOf('a'), digest)).toBe(true);
    expect(await inBackend(h.raw, digest)).toBe(true);

    // The user deletes it from a: the next collection frees the bytes, and counts them.
    await c.delete(ctxOf('a'), digest);
    expect(await inBackend(h.raw, digest)).toBe(true);
    expect((await h.store.garbageCollect()).removed.content).toBe(1);
    expect(await inBackend(h.raw, digest)).toBe(false);
  });

  it('collects expired leases and what only they held', async () => {
    h = await createHarness();
    const c = h.store.content;
    await h.store.leases.create(ctx, { id: 'expired', labels: { 'containerd.io/gc.expire': '2000-01-01T00:00:00Z' } });
    await h.store.leases.create(ctx, { id: 'future', labels: { 'containerd.io/gc.expire': '2999-01-01T00:00:00+02:00' } });
    await h.store.leases.create(ctx, { id: 'garbled', labels: { 'containerd.io/gc.expire': 'tomorrow' } });
    const inExpired = await putBlob(c, ctxOf('default', 'expired'), 'in expired');
    const inFuture = await putBlob(c, ctxOf('default', 'future'), 'in future');
    const inGarbled = await putBlob(c, ctxOf('default', 'garbled'), 'in garbled');

    const stats = await h.store.garbageCollect();
    expect(stats.removed).toEqual({ content: 1, ingests: 0, snapshots: 0, leases: 1 });
    expect((await h.store.leases.list(ctx)).map((l) => l.id).sort()).toEqual(['future', 'garbled']);
    await expect(h.store.leases.listResources(ctx, 'expired')).rejects.toSatisfy(isNotFound);
    expect(await inNamespace(c, ctx, inExpired)).toBe(false);
    expect(await inBackend(h.raw, inExpired)).toBe(false);
    expect(await inNamespace(c, ctx, inFuture)).toBe(true);
    expect(await inNamespace(c, ctx, inGarbled)).toBe(true);
  });

  it('honours gc.flat: a flat lease holds only its direct resources', async () => {
    h = await createHarness();
    const c = h.store.content;
    const child = await putBlob(c, ctx, 'flat child');
    const other = await putBlob(c, ctx, 'normal child');
    await h.store.leases.create(ctx, { id: 'flat', labels: { 'containerd.io/gc.flat': 'yes' } });
    await h.store.leases.create(ctx, { id: 'deep' });
    const top = await putBlob(c, ctxOf('default', 'flat'), 'flat top', { labels: { 'containerd.io/gc.ref.content.0': child } });
    await putBlob(c, ctxOf('default', 'deep'), 'deep top', { labels: { 'containerd.io/gc.ref.content.0': other } });

    await h.store.garbageCollect();
    expect(await inNamespace(c, ctx, top)).toBe(true);
    expect(await inNamespace(c, ctx, child)).toBe(false);
    expect(await inNamespace(c, ctx, other)).toBe(true);
  });

  it('expands a node reached both through a flat lease and normally', async () => {
    h = await createHarness();
    const c = h.store.content;
    const child = await putBlob(c, ctx, 'child');
    await h.store.leases.create(ctx, { id: 'flat', labels: { 'containerd.io/gc.flat': 'true' } });
    // Leases are scanned first: `top` is reached flat before the root reaches it normally.
    const top = await putBlob(c, ctxOf('default', 'flat'), 'top', { labels: { 'containerd.io/gc.ref.content': child } });
    await putBlob(c, ctx, 'root', { labels: { 'containerd.io/gc.root': 'y', 'containerd.io/gc.ref.content': top } });
    const marked = mark(h.store.database.records, Date.now());
    expect(marked.has('content', 'default', top)).toBe(true);
    expect(marked.has('content', 'default', child)).toBe(true);
    await h.store.garbageCollect();
    expect(await inNamespace(c, ctx, child)).toBe(true);
  });

  it('keeps live ingests and aborts stale or unowned ones', async () => {
    h = await createHarness({ ingestExpiryMs: 60_000 });
    const c = h.store.content;
    await h.store.leases.create(ctx, { id: 'l' });
    await (await c.writer(ctxOf('default', 'l'), { ref: 'leased' })).close();
    const fresh = await c.writer(ctx, { ref: 'fresh' });
    await fresh.write(Buffer.from('abc'));
    await fresh.close();
    // A backend ingest nobody owns (e.g. left by a crash).
    await (await h.raw.writer(ctx, { ref: 'orphan/1/x' })).close();

    // A stale unleased ingest: its record's expiry is in the past.
    await (await c.writer(ctx, { ref: 'stale' })).close();
    await h.store.database.update((r) => {
      const rec = r.get<Record<string, unknown>>(keys.ingest('default', 'stale'))!;
      r.put(keys.ingest('default', 'stale'), { ...rec, expireAt: Date.now() - 1 });
    });

    const stats = await h.store.garbageCollect();
    expect(stats.removed.ingests).toBe(2);
    expect((await c.listStatuses(ctx)).map((s) => s.ref).sort()).toEqual(['fresh', 'leased']);
    const backend = (await h.raw.listStatuses(ctx)).map((s) => s.ref);
    expect(backend).toHaveLength(2);
    expect(backend.some((r) => r.startsWith('orphan/'))).toBe(false);
    expect((await c.status(ctx, 'fresh')).offset).toBe(3);

    // When the lease goes, its ingest goes with the next collection.
    await h.store.leases.delete(ctx, 'l');
    expect((await h.store.garbageCollect()).removed).toMatchObject({ ingests: 1 });
    expect((await c.listStatuses(ctx)).map((s) => s.ref)).toEqual(['fresh']);
  });

  it('keeps the blob a shared ingest points to even when no namespace records it', async () => {
    h = await createHarness();
    const c = h.store.content;
    const digest = await putBlob(c, ctxOf('a'), 'wanted by b');
    await h.store.leases.create(ctxOf('b'), { id: 'pull' });
    const w = await c.writer(ctxOf('b', 'pull'), { ref: 'r', expected: digest });
    await c.delete(ctxOf('a'), digest);

    await h.store.garbageCollect();
    expect(await inBackend(h.raw, digest)).toBe(true);
    await w.commit(0, digest);
    expect(await inNamespace(c, ctxOf('b'), digest)).toBe(true);
  });

  it('treats images and containers as roots, with their label references', async () => {
    h = await createHarness();
    const c = h.store.content;
    const config = await putBlob(c, ctx, 'config', { labels: { 'containerd.io/gc.ref.snapshot.overlayfs': 'sha256:chain' } });
    const manifest = await putBlob(c, ctx, 'manifest', { labels: { 'containerd.io/gc.ref.content.config': config } });
    const extra = await putBlob(c, ctx, 'extra');
    const byContainer = await putBlob(c, ctx, 'by container');
    const unused = await putBlob(c, ctx, 'unused');
    const now = Date.now();
    await h.store.database.update((r) => {
      r.put(keys.image('default', 'example.com/app:1'), {
        target: { digest: manifest, mediaType: 'application/vnd.oci.image.manifest.v1+json', size: 8 },
        labels: { 'containerd.io/gc.ref.content.extra': extra },
        createdAt: now,
        updatedAt: now,
      } satisfies ImageRecord);
      r.put(keys.container('default', 'c1'), {
        snapshotter: 'overlayfs',
        snapshotKey: 'c1',
        labels: { 'containerd.io/gc.ref.content': byContainer },
        createdAt: now,
        updatedAt: now,
      } satisfies ContainerRecord);
    });

    const marked = mark(h.store.database.records, Date.now());
    expect(marked.has('snapshot', 'default', 'overlayfs/sha256:chain')).toBe(true);
    expect(marked.has('snapshot', 'default', 'overlayfs/c1')).toBe(true);

    await h.store.garbageCollect();
    for (const kept of [manifest, config, extra, byContainer]) expect(await inNamespace(c, ctx, kept)).toBe(true);
    expect(await inNamespace(c, ctx, unused)).toBe(false);
  });

  it('removes backend blobs that no record names (a crash between backend commit and record)', async () => {
    h = await createHarness();
    const w = await h.raw.writer(ctx, { ref: 'crash' });
    await w.write(Buffer.from('orphaned'));
    await w.commit(8, sha256('orphaned'));
    await h.reopen();
    const stats = await h.store.garbageCollect();
    expect(stats.removed.content).toBe(1);
    expect(await inBackend(h.raw, sha256('orphaned'))).toBe(false);
  });

  it('still frees unreferenced backend blobs when its sweep cannot commit (a full disk)', async () => {
    h = await createHarness();
    const w = await h.raw.writer(ctx, { ref: 'crash' });
    await w.write(Buffer.from('orphaned'));
    await w.commit(8, sha256('orphaned'));
    await h.store.leases.create(ctx, { id: 'expired', labels: { 'containerd.io/gc.expire': '2000-01-01T00:00:00Z' } });
    await h.reopen();
    const db = h.store.database;
    const full = new UnknownError('write /meta.lmdb: no space left on device');
    const txn = db.txn.bind(db);
    let failures = 1;
    db.txn = (fn) => (failures-- > 0 ? Promise.reject(full) : txn(fn));
    await expect(h.store.garbageCollect()).rejects.toBe(full);
    expect(await inBackend(h.raw, sha256('orphaned'))).toBe(false);
    expect((await h.store.leases.list(ctx)).map((l) => l.id)).toEqual(['expired']);
    const stats = await h.store.garbageCollect();
    expect(stats.removed.leases).toBe(1);
  });

  it('notifies mutation listeners, but not for its own removals', async () => {
    h = await createHarness();
    const seen: string[] = [];
    const off = h.store.onMutation((kind) => seen.push(kind));
    const digest = await putBlob(h.store.content, ctx, 'x'); // writer() + commit
    expect(seen).toEqual(['write', 'write']);
    await h.store.content.update(ctx, { digest, labels: { a: 'b' } });
    expect(seen.at(-1)).toBe('write');
    await h.store.content.update(ctx, { digest, labels: {} });
    expect(seen.at(-1)).toBe('delete'); // a label went away
    await h.store.leases.create(ctx, { id: 'l' });
    expect(seen.at(-1)).toBe('write');
    await h.store.leases.delete(ctx, 'l');
    expect(seen.at(-1)).toBe('delete');
    expect(h.store.dirty).toBe(2);
    await h.store.content.delete(ctx, digest);
    expect(seen.at(-1)).toBe('delete');
    const count = seen.length;
    await expect(h.store.content.info(ctx, digest)).rejects.toSatisfy(isNotFound);
    await expect(h.store.leases.delete(ctx, 'nope')).rejects.toSatisfy(isNotFound);
    expect(seen.length).toBe(count); // reads and failed mutations notify nobody

    await h.store.garbageCollect();
    expect(seen.length).toBe(count);
    expect(h.store.dirty).toBe(0);
    off();
    await h.store.leases.create(ctx, { id: 'quiet' });
    expect(seen.length).toBe(count);
  });

  it('parses RFC 3339 times strictly', () => {
    expect(parseRfc3339('2024-05-06T07:08:09Z')).toBe(Date.UTC(2024, 4, 6, 7, 8, 9));
    expect(parseRfc3339('2024-05-06T07:08:09.5+01:00')).toBe(Date.UTC(2024, 4, 6, 6, 8, 9, 500));
    expect(parseRfc3339('2024-05-06')).toBeUndefined();
    expect(parseRfc3339('May 6 2024')).toBeUndefined();
  });

  describe('racing writes', () => {
    it('does not lose a blob whose leased commit is between backend commit and record', async () => {
      const gate = deferred();
      const committed = deferred();
      h = await createHarness({
        wrapRaw: (raw) =>
          gated(raw, {
            afterCommit: async () => {
              committed.resolve();
              await gate.promise;
            },
          }),
      });
      await h.store.leases.create(ctx, { id: 'pull' });
      const w = await h.store.content.writer(ctxOf('default', 'pull'), { ref: 'layer' });
      await w.write(Buffer.from('racing layer'));
      const commit = w.commit(0, sha256('racing layer'));
      await committed.promise;
      // The bytes are in the backend, the record is not written yet.
      expect(await inBackend(h.raw, sha256('racing layer'))).toBe(true);

      const gc = h.store.garbageCollect();
      try {
        expect(await settlesSoon(gc)).toBe(false); // waits for the commit
      } finally {
        gate.resolve();
      }
      await commit;
      const stats = await gc;
      expect(stats.removed.content).toBe(0);
      expect(await inNamespace(h.store.content, ctx, sha256('racing layer'))).toBe(true);
      expect(await inBackend(h.raw, sha256('racing layer'))).toBe(true);
      expect(await h.store.leases.listResources(ctx, 'pull')).toEqual([{ id: sha256('racing layer'), type: 'content' }]);
    });

    it('holds a mutation back while a collection runs, then applies it', async () => {
      const gate = deferred();
      const listing = deferred();
      let pause = false;
      h = await createHarness({
        wrapRaw: (raw) =>
          gated(raw, {
            beforeList: async () => {
              if (!pause) return;
              listing.resolve();
              await gate.promise;
            },
          }),
      });
      const doomed = await putBlob(h.store.content, ctx, 'doomed');
      await h.store.leases.create(ctx, { id: 'l' });
      pause = true;
      const gc = h.store.garbageCollect();
      await listing.promise; // the collection is sweeping the backend

      const commit = putBlob(h.store.content, ctxOf('default', 'l'), 'arrives during gc');
      const create = h.store.leases.create(ctx, { id: 'later' });
      try {
        expect(await settlesSoon(commit)).toBe(false);
        expect(await settlesSoon(create)).toBe(false);
      } finally {
        gate.resolve();
      }
      expect((await gc).removed.content).toBe(1);
      const digest = await commit;
      await create;
      expect(await inNamespace(h.store.content, ctx, doomed)).toBe(false);
      expect(await inNamespace(h.store.content, ctx, digest)).toBe(true);
      expect(await inBackend(h.raw, digest)).toBe(true);
      pause = false;
      expect((await h.store.garbageCollect()).removed.content).toBe(0);
      expect(await inBackend(h.raw, digest)).toBe(true);
    });

    it('collects the bytes of a commit whose lease vanished between backend commit and record', async () => {
      let onCommit: (() => Promise<void>) | undefined;
      h = await createHarness({ wrapRaw: (raw) => gated(raw, { afterCommit: () => onCommit?.() ?? Promise.resolve() }) });
      await h.store.garbageCollect(); // start clean: nothing dirty
      await h.store.leases.create(ctx, { id: 'brief' });
      const w = await h.store.content.writer(ctxOf('default', 'brief'), { ref: 'r' });
      await w.write(Buffer.from('lost lease'));
      onCommit = () => h.store.leases.delete(ctx, 'brief');
      await expect(w.commit(0, sha256('lost lease'))).rejects.toSatisfy(isNotFound);
      expect(await inBackend(h.raw, sha256('lost lease'))).toBe(true);
      expect((await h.store.garbageCollect()).removed.content).toBe(1);
      expect(await inBackend(h.raw, sha256('lost lease'))).toBe(false);
    });

    it('survives many concurrent leased writes interleaved with collections', async () => {
      h = await createHarness();
      await h.store.leases.create(ctx, { id: 'bulk' });
      const leased = ctxOf('default', 'bulk');
      const writes: Promise<string>[] = [];
      const collections: Promise<unknown>[] = [];
      for (let i = 0; i < 30; i++) {
        writes.push(putBlob(h.store.content, leased, `blob ${i}`, { ref: `r${i}` }));
        if (i % 5 === 0) collections.push(h.store.garbageCollect());
      }
      const digests = await Promise.all(writes);
      await Promise.all(collections);
      await h.store.garbageCollect();
      for (const d of digests) {
        expect(await inNamespace(h.store.content, ctx, d)).toBe(true);
        expect(await inBackend(h.raw, d)).toBe(true);
      }
    });
  });
});
