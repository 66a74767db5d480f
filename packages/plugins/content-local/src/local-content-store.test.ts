import { describeContentStoreConformance } from '@berth/core/testing';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  isDataLoss,
  isFailedPrecondition,
  isInvalidArgument,
  isNotFound,
  isNotImplemented,
  isOutOfRange,
  isAlreadyExists,
  isUnavailable,
  type ContentStore,
  type OpContext,
} from '@berth/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LocalContentStore } from './local-content-store.js';
import { sha256Digest as sha256, sha256Hex } from '@berth/core';

const ctx: OpContext = { namespace: 'default' };

describeContentStoreConformance('local', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'berth-content-conf-'));
  const store = await LocalContentStore.open({ root: join(dir, 'io.containerd.content.v1.content') });
  return {
    store,
    ctx,
    async cleanup() {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
});

describe('LocalContentStore', () => {
  let dir: string;
  let root: string;
  let store: LocalContentStore;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'berth-content-'));
    root = join(dir, 'content');
    store = await LocalContentStore.open({ root });
  });

  afterEach(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  const reopen = async () => {
    await store.close();
    store = await LocalContentStore.open({ root });
  };

  describe('on-disk layout', () => {
    it('commits into blobs/sha256/<hex> as a read-only file and removes the ingest', async () => {
      const data = randomBytes(1000);
      const w = await store.writer(ctx, { ref: 'layout' });
      await w.write(data);
      const ingestDir = join(root, 'ingest', sha256Hex('layout'));
      expect((await readdir(ingestDir)).sort()).toEqual(['data', 'ref', 'startedat', 'updatedat']);
      expect(await readFile(join(ingestDir, 'ref'), 'utf8')).toBe('layout');
      expect((await readFile(join(ingestDir, 'data'))).equals(data)).toBe(true);
      await w.commit(data.length, sha256(data));

      const blob = join(root, 'blobs', 'sha256', sha256Hex(data));
      const st = await stat(blob);
      expect(st.mode & 0o777).toBe(0o444);
      expect((await readFile(blob)).equals(data)).toBe(true);
      expect(await readdir(join(root, 'ingest'))).toEqual([]);
      expect(store.root).toBe(root);
    });

    it('persists total and expected of an ingest', async () => {
      const data = randomBytes(10);
      const w = await store.writer(ctx, { ref: 'persist', total: 10, expected: sha256(data) });
      const ingestDir = join(root, 'ingest', sha256Hex('persist'));
      expect(await readFile(join(ingestDir, 'total'), 'utf8')).toBe('10');
      expect(await readFile(join(ingestDir, 'expected'), 'utf8')).toBe(sha256(data));
      await w.close();
      const started = new Date(await readFile(join(ingestDir, 'startedat'), 'utf8'));
      expect((await store.status(ctx, 'persist')).startedAt.getTime()).toBe(started.getTime());
    });

    it('reads timestamps written by containerd (nanosecond RFC 3339)', async () => {
      const w = await store.writer(ctx, { ref: 'go-time' });
      await w.close();
      const ingestDir = join(root, 'ingest', sha256Hex('go-time'));
      await writeFile(join(ingestDir, 'startedat'), '2020-11-28T17:37:30.321868259Z');
      expect((await store.status(ctx, 'go-time')).startedAt.toISOString()).toBe('2020-11-28T17:37:30.321Z');
    });
  });

  describe('writer semantics', () => {
    it('checks a commit against the total and expected given when the ingest started', async () => {
      const data = randomBytes(100);
      const w1 = await store.writer(ctx, { ref: 'remembered', total: 101 });
      await w1.write(data);
      await expect(w1.commit(0, '')).rejects.toSatisfy(isFailedPrecondition);

      const w2 = await store.writer(ctx, { ref: 'remembered-digest', expected: sha256(randomBytes(5)) });
      await w2.write(data);
      const err = await w2.commit(0, '').catch((e: unknown) => e);
      expect(isFailedPrecondition(err)).toBe(true);
      expect((err as Error).message).toMatch(/^unexpected commit digest sha256:[0-9a-f]{64}, expected sha256:/);
    });

    it('uses containerd messages for size mismatch, lock and existing content', async () => {
      const data = randomBytes(4);
      const w = await store.writer(ctx, { ref: 'msg' });
      await w.write(data);
      await expect(store.writer(ctx, { ref: 'msg' })).rejects.toThrow('ref msg locked');
      await expect(w.commit(5, '')).rejects.toThrow('unexpected commit size 4, expected 5');
      const again = await store.writer(ctx, { ref: 'msg' });
      await again.commit(4, '');
      const dup = await store.writer(ctx, { ref: 'msg-dup' });
      await dup.write(data);
      await expect(dup.commit(4, '')).rejects.toThrow(`content ${sha256(data)}: already exists`);
      await expect(store.reader(ctx, sha256(randomBytes(1)))).rejects.toThrow(/^content digest sha256:[0-9a-f]{64}: not found$/);
    });

    it('refuses a resume whose total or expected contradicts the stored one', async () => {
      const w = await store.writer(ctx, { ref: 'contradict', total: 10, expected: sha256(Buffer.from('a')) });
      await w.close();
      await expect(store.writer(ctx, { ref: 'contradict', total: 11 })).rejects.toSatisfy(isFailedPrecondition);
      await expect(store.writer(ctx, { ref: 'contradict', expected: sha256(Buffer.from('b')) })).rejects.toSatisfy(
        isFailedPrecondition,
      );
      // Neither failure leaked the lock.
      const again = await store.writer(ctx, { ref: 'contradict', total: 10 });
      await again.close();
    });

    it('records a total learnt on resume', async () => {
      const w = await store.writer(ctx, { ref: 'learn' });
      await w.close();
      const w2 = await store.writer(ctx, { ref: 'learn', total: 42 });
      await w2.close();
      expect((await store.status(ctx, 'learn')).total).toBe(42);
    });

    it('never leaks the ref lock on errors', async () => {
      const data = randomBytes(8);
      const w = await store.writer(ctx, { ref: 'seed' });
      await w.write(data);
      await w.commit(8, '');
      // AlreadyExists at writer(): the lock taken for the attempt is given back.
      await expect(store.writer(ctx, { ref: 'leak', expected: sha256(data) })).rejects.toSatisfy(isAlreadyExists);
      await expect(store.writer(ctx, { ref: 'leak', total: -1 })).rejects.toSatisfy(isInvalidArgument);
      const ok = await store.writer(ctx, { ref: 'leak' });
      // Invalid commit arguments leave the writer usable.
      await expect(ok.commit(-1, '')).rejects.toSatisfy(isInvalidArgument);
      await expect(ok.commit(0, 'sha256:x')).rejects.toSatisfy(isInvalidArgument);
      await ok.write(Buffer.from('x'));
      await ok.close();
      await (await store.writer(ctx, { ref: 'leak' })).close();
    });

    it('refuses to use a writer after commit or close', async () => {
      const w = await store.writer(ctx, { ref: 'spent' });
      await w.close();
      await w.close(); // idempotent
      await expect(w.write(Buffer.from('x'))).rejects.toSatisfy(isFailedPrecondition);
      await expect(w.commit(0, '')).rejects.toSatisfy(isFailedPrecondition);
      await expect(w.truncate(0)).rejects.toSatisfy(isFailedPrecondition);
    });

    it('supports only truncate(0)', async () => {
      const w = await store.writer(ctx, { ref: 'trunc' });
      await w.write(Buffer.from('abc'));
      await expect(w.truncate(1)).rejects.toSatisfy(isNotImplemented);
      await w.close();
    });

    it('orders concurrent writes on one writer', async () => {
      const parts = Array.from({ length: 20 }, () => randomBytes(10_000));
      const w = await store.writer(ctx, { ref: 'concurrent' });
      await Promise.all(parts.map((p) => w.write(p)));
      const all = Buffer.concat(parts);
      expect(w.digest()).toBe(sha256(all));
      await w.commit(all.length, sha256(all));
    });

    it('lets abort remove an ingest whose writer is still open; the commit then fails', async () => {
      const w = await store.writer(ctx, { ref: 'abort-open' });
      await w.write(randomBytes(10));
      await store.abort(ctx, 'abort-open');
      await w.write(randomBytes(10));
      await expect(w.commit(0, '')).rejects.toSatisfy(isNotFound);
      // The lock was released by the failed commit.
      await (await store.writer(ctx, { ref: 'abort-open' })).close();
    });

    it('commits the same bytes from two refs concurrently: one wins, the other gets AlreadyExists', async () => {
      const data = randomBytes(50_000);
      const writers = await Promise.all(['twin-1', 'twin-2'].map((ref) => store.writer(ctx, { ref })));
      for (const w of writers) await w.write(data);
      const results = await Promise.allSettled(writers.map((w) => w.commit(data.length, sha256(data))));
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      const rejected = results.find((r) => r.status === 'rejected');
      expect(isAlreadyExists((rejected as PromiseRejectedResult).reason)).toBe(true);
      expect(await store.listStatuses(ctx)).toEqual([]);
    });

    it('accepts refs of any shape without leaving the ingest directory', async () => {
      for (const ref of ['../../escape', '/abs/path', 'a/b/c', 'x'.repeat(5000), 'ünï\u0000cödé']) {
        const w = await store.writer(ctx, { ref });
        await w.write(Buffer.from(ref));
        await w.close();
        expect((await store.status(ctx, ref)).ref).toBe(ref);
      }
      expect((await readdir(root)).sort()).toEqual(['blobs', 'ingest']);
      expect(await readdir(join(root, 'ingest'))).toHaveLength(5);
      expect(await readdir(dir)).toEqual(['content']);
    });
  });

  describe('readers', () => {
    it('streams in chunks of at most 1 MiB', async () => {
      const data = randomBytes(2 * 1024 * 1024 + 10);
      const w = await store.writer(ctx, { ref: 'chunks' });
      await w.write(data);
      await w.commit(data.length, sha256(data));
      const r = await store.reader(ctx, sha256(data));
      const sizes: number[] = [];
      for await (const chunk of r.stream()) sizes.push(chunk.length);
      expect(sizes).toEqual([1 << 20, 1 << 20, 10]);
      await r.close();
    });

    it('rejects reads past the end and bad ranges; closed readers refuse', async () => {
      const data = randomBytes(100);
      const w = await store.writer(ctx, { ref: 'range' });
      await w.write(data);
      await w.commit(100, '');
      const r = await store.reader(ctx, sha256(data));
      await expect(r.read(101, 1)).rejects.toSatisfy(isOutOfRange);
      await expect(r.read(-1, 1)).rejects.toSatisfy(isInvalidArgument);
      await expect(r.read(0, -1)).rejects.toSatisfy(isInvalidArgument);
      await r.close();
      await expect(r.read(0, 1)).rejects.toSatisfy(isFailedPrecondition);
    });

    it('keeps serving an open reader after the blob is deleted', async () => {
      const data = randomBytes(5000);
      const w = await store.writer(ctx, { ref: 'unlinked' });
      await w.write(data);
      await w.commit(5000, '');
      const r = await store.reader(ctx, sha256(data));
      await store.delete(ctx, sha256(data));
      expect((await r.read(0, 5000)).equals(data)).toBe(true);
      await r.close();
    });

    it('reports a deleted blob as not found although a recent reader left its handle open', async () => {
      const data = randomBytes(5000);
      const w = await store.writer(ctx, { ref: 'cached' });
      await w.write(data);
      await w.commit(5000, '');
      const first = await store.reader(ctx, sha256(data));
      expect((await first.read(0, 10)).equals(data.subarray(0, 10))).toBe(true);
      await first.close();
      await store.delete(ctx, sha256(data));
      await expect(store.reader(ctx, sha256(data))).rejects.toSatisfy(isNotFound);
      // Committed again (same bytes), it reads again.
      const again = await store.writer(ctx, { ref: 'cached-again' });
      await again.write(data);
      await again.commit(5000, '');
      const second = await store.reader(ctx, sha256(data));
      expect((await second.read(4000, 1000)).equals(data.subarray(4000))).toBe(true);
      await second.close();
    });
  });

  describe('persistence', () => {
    it('keeps labels and update times across a reopen', async () => {
      const data = randomBytes(10);
      const w = await store.writer(ctx, { ref: 'labels' });
      await w.write(data);
      await w.commit(10, '', { labels: { a: 'b', empty: '' } });
      const updated = await store.update(ctx, { digest: sha256(data), labels: { c: 'd' } }, ['labels.c']);
      expect(updated.labels).toEqual({ a: 'b', c: 'd' });
      await reopen();
      const info = await store.info(ctx, sha256(data));
      expect(info.labels).toEqual({ a: 'b', c: 'd' });
      expect(info.updatedAt.getTime()).toBe(updated.updatedAt.getTime());
    });

    it('keeps labels whose keys look like object internals', async () => {
      const data = randomBytes(10);
      const w = await store.writer(ctx, { ref: 'proto' });
      await w.write(data);
      await w.commit(10, '');
      const labels = JSON.parse('{"__proto__":"x","constructor":"y"}') as Record<string, string>;
      await store.update(ctx, { digest: sha256(data), labels }, ['labels.__proto__', 'labels.constructor']);
      await reopen();
      const info = await store.info(ctx, sha256(data));
      expect(Object.keys(info.labels).sort()).toEqual(['__proto__', 'constructor']);
      expect(Object.getPrototypeOf(info.labels)).toBe(Object.prototype);
    });

    it('resumes an ingest after a reopen', async () => {
      const data = randomBytes(3000);
      const w = await store.writer(ctx, { ref: 'reopen', total: 3000 });
      await w.write(data.subarray(0, 1000));
      await w.close();
      await reopen();
      expect(await store.listStatuses(ctx)).toMatchObject([{ ref: 'reopen', offset: 1000, total: 3000 }]);
      const w2 = await store.writer(ctx, { ref: 'reopen' });
      expect(w2.digest()).toBe(sha256(data.subarray(0, 1000)));
      await w2.write(data.subarray(1000));
      await w2.commit(0, sha256(data));
    });

    it('cleans debris of interrupted ingests at open and keeps real ones', async () => {
      const w = await store.writer(ctx, { ref: 'real' });
      await w.write(Buffer.from('abc'));
      await w.close();
      const ingest = join(root, 'ingest');
      // Creation interrupted before the ref file.
      await mkdir(join(ingest, sha256Hex('no-ref')));
      await writeFile(join(ingest, sha256Hex('no-ref'), 'data'), 'x');
      // Commit interrupted after the rename: ref but no data.
      await mkdir(join(ingest, sha256Hex('no-data')));
      await writeFile(join(ingest, sha256Hex('no-data'), 'ref'), 'no-data');
      // A directory that is not the hash of its ref, a stray file and a temp file.
      await mkdir(join(ingest, sha256Hex('other')));
      await writeFile(join(ingest, sha256Hex('other'), 'ref'), 'not-other');
      await writeFile(join(ingest, sha256Hex('other'), 'data'), '');
      await writeFile(join(ingest, 'stray'), '');
      await writeFile(join(ingest, sha256Hex('real'), 'updatedat.123-abcd.tmp'), 'torn');
      await writeFile(join(root, 'labels.json.1-ab.tmp'), 'torn');
      await reopen();
      expect(await readdir(ingest)).toEqual([sha256Hex('real')]);
      expect((await readdir(join(ingest, sha256Hex('real')))).sort()).toEqual(['data', 'ref', 'startedat', 'updatedat']);
      expect(await readdir(root)).not.toContain('labels.json.1-ab.tmp');
      expect((await store.status(ctx, 'real')).offset).toBe(3);
    });

    it('restarts an ingest directory that lost its ref file', async () => {
      await mkdir(join(root, 'ingest', sha256Hex('lost')));
      await writeFile(join(root, 'ingest', sha256Hex('lost'), 'data'), 'old bytes');
      const w = await store.writer(ctx, { ref: 'lost' });
      expect((await w.status()).offset).toBe(0);
      await w.close();
    });

    it('refuses an ingest directory that holds another ref', async () => {
      await mkdir(join(root, 'ingest', sha256Hex('mine')));
      await writeFile(join(root, 'ingest', sha256Hex('mine'), 'ref'), 'theirs');
      await writeFile(join(root, 'ingest', sha256Hex('mine'), 'data'), '');
      await expect(store.writer(ctx, { ref: 'mine' })).rejects.toSatisfy(isDataLoss);
      await expect(store.status(ctx, 'mine')).rejects.toSatisfy(isNotFound);
    });

    it('moves an unreadable label file aside instead of failing', async () => {
      await store.close();
      await writeFile(join(root, 'labels.json'), '{not json');
      store = await LocalContentStore.open({ root });
      expect((await readdir(root)).some((n) => n.startsWith('labels.json.corrupt-'))).toBe(true);
    });

    it('forgets labels of blobs removed behind its back', async () => {
      const data = randomBytes(10);
      const w = await store.writer(ctx, { ref: 'pruned' });
      await w.write(data);
      await w.commit(10, '', { labels: { a: 'b' } });
      await rm(join(root, 'blobs', 'sha256', sha256Hex(data)));
      await reopen();
      const saved = JSON.parse(await readFile(join(root, 'labels.json'), 'utf8')) as { blobs: object };
      expect(saved.blobs).toEqual({});
    });
  });

  describe('lifecycle', () => {
    it('closes open writers (leaving them resumable) and refuses calls after close', async () => {
      const w = await store.writer(ctx, { ref: 'open-at-close' });
      await w.write(Buffer.from('hello'));
      await store.close();
      await expect(store.info(ctx, sha256(Buffer.from('x')))).rejects.toSatisfy(isUnavailable);
      await expect(w.write(Buffer.from('x'))).rejects.toSatisfy(isFailedPrecondition);
      store = await LocalContentStore.open({ root });
      expect((await store.status(ctx, 'open-at-close')).offset).toBe(5);
    });

    it('honours an aborted signal', async () => {
      const signal = AbortSignal.abort();
      await expect(store.listStatuses({ namespace: 'x', signal })).rejects.toThrow();
    });
  });
});
