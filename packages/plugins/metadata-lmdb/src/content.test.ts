import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  isAlreadyExists,
  isFailedPrecondition,
  isInvalidArgument,
  isNotFound,
  type ContentInfo,
  type ContentStore,
  type OpContext,
  type WriterOptions,
  UnavailableError,
} from '@berth/core';
import { keys, type IngestRecord } from './schema.js';
import { createHarness, useHarness, ctxOf, putBlob, sha256, type Harness, type RawStore } from './testing-fixtures/harness.js';

async function listAll(store: ContentStore, ctx: OpContext, filters?: string[]): Promise<ContentInfo[]> {
  const out: ContentInfo[] = [];
  for await (const info of store.list(ctx, filters)) out.push(info);
  return out;
}

async function readBlob(store: ContentStore, ctx: OpContext, digest: string): Promise<string> {
  const r = await store.reader(ctx, digest);
  try {
    return (await r.read(0, r.size)).toString();
  } finally {
    await r.close();
  }
}

describe('namespaced content', () => {
  let h: Harness;
  const a = ctxOf('ns-a');
  const b = ctxOf('ns-b');

  useHarness((created) => (h = created));

  it('makes a blob visible only in the namespace that committed it', async () => {
    const digest = await putBlob(h.store.content, a, 'only in a', { labels: { owner: 'a' } });
    expect(await readBlob(h.store.content, a, digest)).toBe('only in a');
    expect((await h.store.content.info(a, digest)).labels).toEqual({ owner: 'a' });

    await expect(h.store.content.info(b, digest)).rejects.toSatisfy(isNotFound);
    await expect(h.store.content.reader(b, digest)).rejects.toSatisfy(isNotFound);
    await expect(h.store.content.delete(b, digest)).rejects.toSatisfy(isNotFound);
    await expect(h.store.content.update(b, { digest, labels: {} })).rejects.toSatisfy(isNotFound);
    expect(await listAll(h.store.content, b)).toEqual([]);
    expect((await listAll(h.store.content, a)).map((i) => i.digest)).toEqual([digest]);
    // The raw store holds it once.
    expect((await h.raw.info(a, digest)).size).toBe(9);
  });

  it('links a blob another namespace has without copying bytes (shared policy)', async () => {
    const data = Buffer.from('shared bytes '.repeat(100));
    const digest = await putBlob(h.store.content, a, data);
    const blobPath = join(h.raw.root!, 'blobs', 'sha256', digest.slice(7));
    const before = await stat(blobPath);

    const w = await h.store.content.writer(b, { ref: 'pull-b', total: data.length, expected: digest });
    const st = await w.status();
    // The writer stands at the full size: a client that checks the status has nothing to send.
    expect(st).toMatchObject({ ref: 'pull-b', offset: data.length, total: data.length, expected: digest });
    expect(w.digest()).toBe(digest);
    expect(await h.store.content.status(b, 'pull-b')).toMatchObject({ ref: 'pull-b', offset: data.length });
    // No backend ingest was opened for it.
    expect(await h.raw.listStatuses(b)).toEqual([]);
    await w.commit(data.length, digest, { labels: { in: 'b' } });

    expect((await h.store.content.info(b, digest)).labels).toEqual({ in: 'b' });
    expect(await readBlob(h.store.content, b, digest)).toBe(data.toString());
    const after = await stat(blobPath);
    expect(after.ino).toBe(before.ino);
    expect(after.mtimeMs).toBe(before.mtimeMs);
    await expect(h.store.content.status(b, 'pull-b')).rejects.toSatisfy(isNotFound);
  });

  it('rejects a shared commit with the wrong size or digest', async () => {
    const data = Buffer.from('verify me');
    const digest = await putBlob(h.store.content, a, data);
    const w = await h.store.content.writer(b, { ref: 'r', expected: digest });
    await expect(w.commit(data.length + 1, digest)).rejects.toSatisfy(isFailedPrecondition);
    await expect(w.commit(data.length, sha256('other'))).rejects.toSatisfy(isFailedPrecondition);
    await expect(h.store.content.info(b, digest)).rejects.toSatisfy(isNotFound);
    await w.commit(0, '');
    expect((await h.store.content.info(b, digest)).size).toBe(data.length);
  });

  it('lets a shared writer be rewritten from zero', async () => {
    const data = Buffer.from('rewrite');
    const digest = await putBlob(h.store.content, a, data);
    const w = await h.store.content.writer(b, { ref: 'r', total: data.length, expected: digest });
    await w.write(data);
    expect((await w.status()).offset).toBe(data.length);
    await w.commit(data.length, digest);
    expect((await h.store.content.info(b, digest)).size).toBe(data.length);
    expect(await h.raw.listStatuses(b)).toEqual([]);
  });

  it('does not share under the isolated policy', async () => {
    await h.reopen({ contentSharingPolicy: 'isolated' });
    const data = Buffer.from('isolated');
    const digest = await putBlob(h.store.content, a, data);
    const w = await h.store.content.writer(b, { ref: 'r', total: data.length, expected: digest });
    expect((await w.status()).offset).toBe(0);
    await w.write(data);
    await w.commit(data.length, digest);
    expect((await h.store.content.info(b, digest)).size).toBe(data.length);
  });

  it('reports AlreadyExists for content already in the namespace', async () => {
    const digest = await putBlob(h.store.content, a, 'twice');
    await expect(h.store.content.writer(a, { ref: 'again', expected: digest })).rejects.toSatisfy(isAlreadyExists);
    await expect(h.store.content.status(a, 'again')).rejects.toSatisfy(isNotFound);

    const w = await h.store.content.writer(a, { ref: 'again' });
    await w.write(Buffer.from('twice'));
    await expect(w.commit(5, digest)).rejects.toSatisfy(isAlreadyExists);
    await expect(h.store.content.status(a, 'again')).rejects.toSatisfy(isNotFound);
  });

  it('maps client refs to per-namespace backend refs and back', async () => {
    const wa = await h.store.content.writer(a, { ref: 'same-ref', total: 10 });
    const wb = await h.store.content.writer(b, { ref: 'same-ref', total: 20 });
    await wa.write(Buffer.from('aaa'));
    await wb.write(Buffer.from('bbbbb'));

    const backendRefs = (await h.raw.listStatuses(a)).map((s) => s.ref).sort();
    expect(backendRefs).toHaveLength(2);
    expect(backendRefs[0]).toMatch(/^ns-a\/\d+\/same-ref$/);
    expect(backendRefs[1]).toMatch(/^ns-b\/\d+\/same-ref$/);
    const record = h.store.database.records.get<IngestRecord>(keys.ingest('ns-a', 'same-ref'));
    expect(record?.ref).toBe(backendRefs[0]);
    expect(record?.expireAt).toBeGreaterThan(Date.now());

    expect(await h.store.content.status(a, 'same-ref')).toMatchObject({ ref: 'same-ref', offset: 3, total: 10 });
    expect(await h.store.content.status(b, 'same-ref')).toMatchObject({ ref: 'same-ref', offset: 5, total: 20 });
    expect((await wa.status()).ref).toBe('same-ref');
    expect((await h.store.content.listStatuses(a)).map((s) => s.ref)).toEqual(['same-ref']);
    expect(await h.store.content.listStatuses(ctxOf('ns-c'))).toEqual([]);

    // Resuming by client ref finds the same backend ingest.
    await wa.close();
    const again = await h.store.content.writer(a, { ref: 'same-ref' });
    expect((await again.status()).offset).toBe(3);
    await again.close();
    await wb.close();
  });

  it('abort removes the ingest record and the backend ingest', async () => {
    const w = await h.store.content.writer(a, { ref: 'doomed' });
    await w.write(Buffer.from('partial'));
    await w.close();
    await h.store.content.abort(a, 'doomed');
    await expect(h.store.content.status(a, 'doomed')).rejects.toSatisfy(isNotFound);
    expect(h.store.database.records.has(keys.ingest('ns-a', 'doomed'))).toBe(false);
    expect(await h.raw.listStatuses(a)).toEqual([]);
    await expect(h.store.content.abort(a, 'doomed')).rejects.toSatisfy(isNotFound);
    // Another namespace's ingest of the same ref is untouched.
    await (await h.store.content.writer(b, { ref: 'doomed' })).close();
    await expect(h.store.content.abort(a, 'doomed')).rejects.toSatisfy(isNotFound);
    expect((await h.store.content.status(b, 'doomed')).ref).toBe('doomed');
  });

  it('delete removes the record but leaves the bytes to garbage collection', async () => {
    const digest = await putBlob(h.store.content, a, 'bytes stay');
    await h.store.content.delete(a, digest);
    await expect(h.store.content.info(a, digest)).rejects.toSatisfy(isNotFound);
    expect((await h.raw.info(a, digest)).size).toBe(10);
  });

  it('updates labels with containerd semantics and validates them', async () => {
    const digest = await putBlob(h.store.content, a, 'labelled', { labels: { x: '1', y: '2' } });
    expect((await h.store.content.update(a, { digest, labels: { z: '3' } }, ['labels.z'])).labels).toEqual({ x: '1', y: '2', z: '3' });
    expect((await h.store.content.update(a, { digest, labels: {} }, ['labels.x'])).labels).toEqual({ y: '2', z: '3' });
    await expect(h.store.content.update(a, { digest, labels: { k: 'v'.repeat(4096) } }, ['labels.k'])).rejects.toSatisfy(isInvalidArgument);
    await expect(h.store.content.update(a, { digest }, ['size'])).rejects.toThrow(`cannot update "size" field on content info "${digest}"`);
    const w = await h.store.content.writer(a, { ref: 'bad-labels' });
    await expect(w.commit(0, '', { labels: { k: 'v'.repeat(4096) } })).rejects.toSatisfy(isInvalidArgument);
    await w.close();
  });

  it('lists with filters', async () => {
    const d1 = await putBlob(h.store.content, a, 'one', { labels: { team: 'x' } });
    const d2 = await putBlob(h.store.content, a, 'two', { labels: { team: 'y' } });
    expect((await listAll(h.store.content, a, ['labels.team==x'])).map((i) => i.digest)).toEqual([d1]);
    expect((await listAll(h.store.content, a, [`digest==${d2}`])).map((i) => i.digest)).toEqual([d2]);
    await expect(listAll(h.store.content, a, ['labels.team=='])).rejects.toSatisfy(isInvalidArgument);
  });

  it('requires a valid namespace', async () => {
    await expect(h.store.content.info({ namespace: '' }, sha256('x'))).rejects.toSatisfy(isInvalidArgument);
    await expect(h.store.content.writer({ namespace: 'bad ns' }, { ref: 'r' })).rejects.toSatisfy(isInvalidArgument);
  });

  it('keeps the first writer\'s ingest when a second writer on the ref is refused', async () => {
    const w1 = await h.store.content.writer(a, { ref: 'held' });
    // The backend refuses a second writer on the same ref; the first writer's record survives.
    await expect(h.store.content.writer(a, { ref: 'held' })).rejects.toThrow(/locked/);
    expect(h.store.database.records.has(keys.ingest('ns-a', 'held'))).toBe(true);
    await w1.close();
  });

  it('removes a new ingest record again when the backend writer cannot be opened', async () => {
    await h.cleanup();
    h = await createHarness({
      wrapRaw: (raw) =>
        Object.assign(Object.create(raw) as RawStore, {
          writer: async (ctx: OpContext, options: WriterOptions) => {
            if (options.ref.endsWith('/broken')) throw new UnavailableError('backend is broken');
            return raw.writer(ctx, options);
          },
        }),
    });
    const lease = await h.store.leases.create(a, { id: 'l' });
    await expect(h.store.content.writer({ ...a, lease: lease.id }, { ref: 'broken' })).rejects.toThrow('backend is broken');
    expect(h.store.database.records.has(keys.ingest('ns-a', 'broken'))).toBe(false);
    expect(await h.store.leases.listResources(a, 'l')).toEqual([]);
  });

  it('keeps blobs and ingests across a reopen', async () => {
    const digest = await putBlob(h.store.content, a, 'durable', { labels: { k: 'v' } });
    const w = await h.store.content.writer(a, { ref: 'half' });
    await w.write(Buffer.from('half'));
    await w.close();
    await h.reopen();
    expect(await h.store.content.info(a, digest)).toMatchObject({ size: 7, labels: { k: 'v' } });
    expect((await h.store.content.status(a, 'half')).offset).toBe(4);
    const resumed = await h.store.content.writer(a, { ref: 'half' });
    await resumed.write(Buffer.from('-done'));
    await resumed.commit(9, sha256('half-done'));
    expect(await readBlob(h.store.content, a, sha256('half-done'))).toBe('half-done');
    // The backend ref counter keeps counting after a reopen: refs never repeat.
    await (await h.store.content.writer(a, { ref: 'next' })).close();
    const refs = (await h.raw.listStatuses(a)).map((s) => s.ref);
    expect(refs).toHaveLength(1);
    expect(Number(refs[0]!.split('/')[1])).toBeGreaterThan(2);
    expect(await readdir(join(h.dir, 'meta'))).toEqual(['meta.lmdb', 'meta.lmdb-lock']);
  });
});
