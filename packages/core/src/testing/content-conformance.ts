import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  isAlreadyExists,
  isFailedPrecondition,
  isInvalidArgument,
  isNotFound,
  isUnavailable,
} from '../errdefs/index.js';
import { EMPTY_DIGEST, sha256Digest as sha256 } from '../digest/digest.js';
import type { ContentInfo, ContentReader, ContentScope, ContentStore, ContentWriter, WriterOptions } from '../kinds/content.js';
import type { Labels, OpContext } from '../kinds/context.js';

/** What a content store implementation hands the suite for each test. */
export interface ContentStoreFixture {
  readonly store: ContentStore<ContentScope>;
  readonly ctx: OpContext;
  /** Releases the store and removes whatever the fixture created. */
  cleanup(): Promise<void>;
}

/** Digests every store must refuse (InvalidArgumentError), including attempts to escape the store's directory. */
const INVALID_DIGESTS: readonly string[] = [
  '',
  'sha256',
  'sha256:',
  'sha256:../../../../etc/passwd',
  `sha256:${'a'.repeat(63)}`,
  `sha256:${'a'.repeat(65)}`,
  `sha256:${'A'.repeat(64)}`,
  `SHA256:${'a'.repeat(64)}`,
  `sha256:${'a'.repeat(64)}/x`,
  `sha256:${'g'.repeat(64)}`,
  `../sha256:${'a'.repeat(64)}`,
  'md5:d41d8cd98f00b204e9800998ecf8427e',
  `sha512:${'a'.repeat(128)}`,
  `unknown:${'a'.repeat(64)}`,
];

/**
 * The behaviour every `ContentStore` promises (containerd's content test suite, in spirit): run it from each
 * implementation's tests with a factory that yields a fresh, empty store per test.
 *
 * Only what the `ContentStore` interface promises is checked, so a raw store and a namespaced one both pass.
 */
export function describeContentStoreConformance(name: string, factory: () => Promise<ContentStoreFixture>): void {
  describe(`content store conformance: ${name}`, () => {
    let fixture: ContentStoreFixture | undefined;
    let store: ContentStore<ContentScope>;
    let ctx: OpContext;
    /** A per-test prefix, so refs never collide even if the fixture shares state between tests. */
    let uid: string;

    beforeEach(async () => {
      fixture = await factory();
      store = fixture.store;
      ctx = fixture.ctx;
      uid = randomBytes(4).toString('hex');
    });

    afterEach(async () => {
      await fixture?.cleanup();
      fixture = undefined;
    });

    const ref = (name: string) => `conformance-${uid}-${name}`;

    async function commitBlob(data: Uint8Array, labels?: Labels, name = 'blob'): Promise<string> {
      const digest = sha256(data);
      const w = await store.writer(ctx, { ref: ref(`${name}-${digest.slice(7, 19)}`), total: data.length, expected: digest });
      await w.write(data);
      await w.commit(data.length, digest, labels ? { labels } : undefined);
      return digest;
    }

    async function readAll(reader: ContentReader, offset?: number, length?: number): Promise<Buffer> {
      const chunks: Buffer[] = [];
      for await (const chunk of reader.stream(offset, length)) chunks.push(Buffer.from(chunk));
      return Buffer.concat(chunks);
    }

    async function listAll(filters?: readonly string[]): Promise<ContentInfo[]> {
      const out: ContentInfo[] = [];
      for await (const info of store.list(ctx, filters)) out.push(info);
      return out;
    }

    describe('write, commit, read', () => {
      it('round-trips a blob written in several chunks', async () => {
        const data = randomBytes(300_000);
        const digest = sha256(data);
        const w = await store.writer(ctx, { ref: ref('round-trip'), total: data.length, expected: digest });
        expect(w.ref).toBe(ref('round-trip'));
        expect((await w.status()).offset).toBe(0);
        expect(w.digest()).toBe(EMPTY_DIGEST);
        for (let at = 0; at < data.length; at += 70_000) await w.write(data.subarray(at, at + 70_000));
        const st = await w.status();
        expect(st.offset).toBe(data.length);
        expect(st.total).toBe(data.length);
        expect(st.ref).toBe(ref('round-trip'));
        expect(w.digest()).toBe(digest);
        await w.commit(data.length, digest);

        const info = await store.info(ctx, digest);
        expect(info.digest).toBe(digest);
        expect(info.size).toBe(data.length);
        expect(info.createdAt).toBeInstanceOf(Date);
        expect(info.updatedAt).toBeInstanceOf(Date);
        expect(info.updatedAt.getTime()).toBeGreaterThanOrEqual(info.createdAt.getTime());
        expect(info.labels).toEqual({});

        const r = await store.reader(ctx, digest);
        try {
          expect(r.size).toBe(data.length);
          expect((await r.read(0, data.length)).equals(data)).toBe(true);
          expect((await readAll(r)).equals(data)).toBe(true);
        } finally {
          await r.close();
        }
        await expect(store.status(ctx, ref('round-trip'))).rejects.toSatisfy(isNotFound);
      });

      it('commits an empty blob', async () => {
        const w = await store.writer(ctx, { ref: ref('empty') });
        await w.commit(0, EMPTY_DIGEST);
        const info = await store.info(ctx, EMPTY_DIGEST);
        expect(info.size).toBe(0);
        const r = await store.reader(ctx, EMPTY_DIGEST);
        expect(r.size).toBe(0);
        expect((await readAll(r)).length).toBe(0);
        await r.close();
      });

      it('commits without size or expected digest', async () => {
        const data = randomBytes(1000);
        const w = await store.writer(ctx, { ref: ref('unverified') });
        await w.write(data);
        await w.commit(0, '');
        expect((await store.info(ctx, sha256(data))).size).toBe(1000);
      });

      it('stores the labels given at commit', async () => {
        const digest = await commitBlob(randomBytes(100), { 'example.com/owner': 'conformance', other: 'x' });
        expect((await store.info(ctx, digest)).labels).toEqual({ 'example.com/owner': 'conformance', other: 'x' });
      });

      it('rejects an empty ref', async () => {
        await expect(store.writer(ctx, { ref: '' })).rejects.toSatisfy(isInvalidArgument);
      });
    });

    describe('resumable ingests', () => {
      it('resumes an ingest by ref at its offset, with the running digest restored', async () => {
        const data = randomBytes(200_000);
        const digest = sha256(data);
        const opts: WriterOptions = { ref: ref('resume'), total: data.length, expected: digest };
        const w1 = await store.writer(ctx, opts);
        await w1.write(data.subarray(0, 123_456));
        await w1.close();

        const st = await store.status(ctx, opts.ref);
        expect(st.offset).toBe(123_456);
        expect(st.total).toBe(data.length);

        const w2 = await store.writer(ctx, opts);
        expect((await w2.status()).offset).toBe(123_456);
        expect(w2.digest()).toBe(sha256(data.subarray(0, 123_456)));
        await w2.write(data.subarray(123_456));
        expect(w2.digest()).toBe(digest);
        await w2.commit(data.length, digest);
        expect((await store.info(ctx, digest)).size).toBe(data.length);
      });

      it('resumes with a writer that does not repeat total and expected', async () => {
        const data = randomBytes(5000);
        const digest = sha256(data);
        const w1 = await store.writer(ctx, { ref: ref('resume-bare'), total: data.length, expected: digest });
        await w1.write(data.subarray(0, 1000));
        await w1.close();
        const w2 = await store.writer(ctx, { ref: ref('resume-bare') });
        expect((await w2.status()).offset).toBe(1000);
        await w2.write(data.subarray(1000));
        await w2.commit(data.length, digest);
        expect((await store.info(ctx, digest)).size).toBe(data.length);
      });

      it('truncate(0) starts the ingest over', async () => {
        const junk = randomBytes(4000);
        const data = randomBytes(3000);
        const w = await store.writer(ctx, { ref: ref('truncate') });
        await w.write(junk);
        await w.truncate(0);
        expect((await w.status()).offset).toBe(0);
        expect(w.digest()).toBe(EMPTY_DIGEST);
        await w.write(data);
        expect((await store.status(ctx, ref('truncate'))).offset).toBe(data.length);
        await w.commit(data.length, sha256(data));
        expect((await store.info(ctx, sha256(data))).size).toBe(data.length);
        await expect(store.info(ctx, sha256(Buffer.concat([junk, data])))).rejects.toSatisfy(isNotFound);
      });
    });

    describe('ref locks', () => {
      it('allows one writer per ref at a time', async () => {
        const w1 = await store.writer(ctx, { ref: ref('locked') });
        const err = await store.writer(ctx, { ref: ref('locked') }).then(
          (w) => w,
          (e: unknown) => e,
        );
        expect(isUnavailable(err), `second writer must fail with UnavailableError, got ${String(err)}`).toBe(true);
        expect(String((err as Error).message)).toContain('locked');
        // Another ref is not affected.
        const other = await store.writer(ctx, { ref: ref('not-locked') });
        await other.close();
        await w1.close();
        const w2 = await store.writer(ctx, { ref: ref('locked') });
        await w2.close();
        await store.abort(ctx, ref('locked'));
      });

      it('releases the lock on commit and on a failed commit', async () => {
        const data = randomBytes(64);
        const w1 = await store.writer(ctx, { ref: ref('lock-commit') });
        await w1.write(data);
        await w1.commit(data.length, sha256(data));
        const w2 = await store.writer(ctx, { ref: ref('lock-commit') });
        expect((await w2.status()).offset).toBe(0);
        await w2.write(randomBytes(10));
        await expect(w2.commit(11, '')).rejects.toSatisfy(isFailedPrecondition);
        const w3 = await store.writer(ctx, { ref: ref('lock-commit') });
        expect((await w3.status()).offset).toBe(10);
        await w3.close();
        await store.abort(ctx, ref('lock-commit'));
      });
    });

    describe('commit verification', () => {
      it('rejects the wrong size and leaves the ingest in place', async () => {
        const data = randomBytes(1000);
        const w = await store.writer(ctx, { ref: ref('bad-size') });
        await w.write(data);
        await expect(w.commit(data.length + 1, sha256(data))).rejects.toSatisfy(isFailedPrecondition);
        await expect(store.info(ctx, sha256(data))).rejects.toSatisfy(isNotFound);
        expect((await store.status(ctx, ref('bad-size'))).offset).toBe(data.length);
        // The client can resume and commit correctly.
        const again = await store.writer(ctx, { ref: ref('bad-size') });
        await again.commit(data.length, sha256(data));
        expect((await store.info(ctx, sha256(data))).size).toBe(data.length);
      });

      it('rejects the wrong digest and leaves the ingest for the client to abort', async () => {
        const data = randomBytes(1000);
        const w = await store.writer(ctx, { ref: ref('bad-digest') });
        await w.write(data);
        await expect(w.commit(data.length, sha256(randomBytes(10)))).rejects.toSatisfy(isFailedPrecondition);
        await expect(store.info(ctx, sha256(data))).rejects.toSatisfy(isNotFound);
        expect((await store.status(ctx, ref('bad-digest'))).offset).toBe(data.length);
        await store.abort(ctx, ref('bad-digest'));
        await expect(store.status(ctx, ref('bad-digest'))).rejects.toSatisfy(isNotFound);
      });

      it('rejects a malformed expected digest', async () => {
        const w = await store.writer(ctx, { ref: ref('bad-expected') });
        await w.write(randomBytes(10));
        await expect(w.commit(10, 'sha256:nope')).rejects.toSatisfy(isInvalidArgument);
        await w.close();
        await store.abort(ctx, ref('bad-expected'));
      });

      it('reports AlreadyExists when committing content that exists, and removes the ingest', async () => {
        const data = randomBytes(2048);
        const digest = await commitBlob(data);
        const w = await store.writer(ctx, { ref: ref('duplicate') });
        await w.write(data);
        await expect(w.commit(data.length, digest)).rejects.toSatisfy(isAlreadyExists);
        await expect(store.status(ctx, ref('duplicate'))).rejects.toSatisfy(isNotFound);
        expect((await store.info(ctx, digest)).size).toBe(data.length);
        // The lock is released: the ref can be used again.
        const again = await store.writer(ctx, { ref: ref('duplicate') });
        await again.close();
        await store.abort(ctx, ref('duplicate'));
      });

      it('reports AlreadyExists for a writer whose expected content exists (at writer() or at commit)', async () => {
        const data = randomBytes(512);
        const digest = await commitBlob(data);
        let w: ContentWriter;
        try {
          w = await store.writer(ctx, { ref: ref('expected-exists'), total: data.length, expected: digest });
        } catch (err) {
          expect(isAlreadyExists(err), `expected AlreadyExistsError, got ${String(err)}`).toBe(true);
          return;
        }
        await w.write(data);
        await expect(w.commit(data.length, digest)).rejects.toSatisfy(isAlreadyExists);
      });
    });

    describe('ingest status and abort', () => {
      it('reports status of active ingests and lists them', async () => {
        const a = await store.writer(ctx, { ref: ref('status-a'), total: 100 });
        await a.write(randomBytes(40));
        const expected = sha256(randomBytes(8));
        const b = await store.writer(ctx, { ref: ref('status-b'), total: 8, expected });
        await b.write(randomBytes(3));
        await b.close();

        const sa = await store.status(ctx, ref('status-a'));
        expect(sa).toMatchObject({ ref: ref('status-a'), offset: 40, total: 100 });
        expect(sa.startedAt).toBeInstanceOf(Date);
        expect(sa.updatedAt.getTime()).toBeGreaterThanOrEqual(sa.startedAt.getTime());
        const sb = await store.status(ctx, ref('status-b'));
        expect(sb).toMatchObject({ ref: ref('status-b'), offset: 3, total: 8, expected });

        const all = await store.listStatuses(ctx);
        const mine = all.filter((s) => s.ref.startsWith(ref('status-')));
        expect(mine.map((s) => s.ref).sort()).toEqual([ref('status-a'), ref('status-b')]);
        expect(mine.find((s) => s.ref === ref('status-a'))?.offset).toBe(40);
        // `ctr content active` sends one empty filter.
        expect((await store.listStatuses(ctx, [''])).filter((s) => s.ref.startsWith(ref('status-'))).length).toBe(2);
        await a.close();
        await store.abort(ctx, ref('status-a'));
        await store.abort(ctx, ref('status-b'));
        expect((await store.listStatuses(ctx)).filter((s) => s.ref.startsWith(ref('status-')))).toEqual([]);
      });

      it('filters statuses by ref', async () => {
        for (const n of ['filter-x', 'filter-y']) await (await store.writer(ctx, { ref: ref(n) })).close();
        const only = await store.listStatuses(ctx, [`ref==${ref('filter-x')}`]);
        expect(only.map((s) => s.ref)).toEqual([ref('filter-x')]);
        const both = await store.listStatuses(ctx, [`ref==${ref('filter-x')}`, `ref==${ref('filter-y')}`]);
        expect(both.map((s) => s.ref).sort()).toEqual([ref('filter-x'), ref('filter-y')]);
        const none = await store.listStatuses(ctx, [`ref==${ref('filter-z')}`]);
        expect(none).toEqual([]);
      });

      it('reports NotFound for the status of an unknown ref', async () => {
        await expect(store.status(ctx, ref('nothing'))).rejects.toSatisfy(isNotFound);
      });

      it('aborts an ingest', async () => {
        const w = await store.writer(ctx, { ref: ref('abort') });
        await w.write(randomBytes(500));
        await w.close();
        await store.abort(ctx, ref('abort'));
        await expect(store.status(ctx, ref('abort'))).rejects.toSatisfy(isNotFound);
        expect((await store.listStatuses(ctx)).some((s) => s.ref === ref('abort'))).toBe(false);
        await expect(store.abort(ctx, ref('abort'))).rejects.toSatisfy(isNotFound);
        const fresh = await store.writer(ctx, { ref: ref('abort') });
        expect((await fresh.status()).offset).toBe(0);
        await fresh.close();
        await store.abort(ctx, ref('abort'));
      });

      it('reports NotFound when aborting an unknown ref', async () => {
        await expect(store.abort(ctx, ref('never'))).rejects.toSatisfy(isNotFound);
      });
    });

    describe('info, update, list, delete', () => {
      it('reports NotFound for missing content', async () => {
        const digest = sha256(randomBytes(32));
        await expect(store.info(ctx, digest)).rejects.toSatisfy(isNotFound);
        await expect(store.reader(ctx, digest)).rejects.toSatisfy(isNotFound);
        await expect(store.update(ctx, { digest, labels: { a: 'b' } }, ['labels.a'])).rejects.toSatisfy(isNotFound);
        await expect(store.delete(ctx, digest)).rejects.toSatisfy(isNotFound);
      });

      it('updates labels with field masks', async () => {
        const digest = await commitBlob(randomBytes(300), { a: '1', b: '2' });
        const created = await store.info(ctx, digest);

        let info = await store.update(ctx, { digest, labels: { c: '3', a: 'ignored' } }, ['labels.c']);
        expect(info.labels).toEqual({ a: '1', b: '2', c: '3' });
        expect(info.digest).toBe(digest);
        expect(info.size).toBe(300);
        expect(info.updatedAt.getTime()).toBeGreaterThanOrEqual(created.createdAt.getTime());
        expect((await store.info(ctx, digest)).labels).toEqual({ a: '1', b: '2', c: '3' });

        // A masked key without a value is removed.
        info = await store.update(ctx, { digest, labels: {} }, ['labels.a']);
        expect(info.labels).toEqual({ b: '2', c: '3' });

        info = await store.update(ctx, { digest, labels: { x: 'y' } }, ['labels']);
        expect(info.labels).toEqual({ x: 'y' });

        // No mask: labels replaced as a whole.
        info = await store.update(ctx, { digest, labels: { z: '1' } });
        expect(info.labels).toEqual({ z: '1' });
        expect((await store.info(ctx, digest)).labels).toEqual({ z: '1' });
        expect((await store.info(ctx, digest)).createdAt.getTime()).toBe(created.createdAt.getTime());
      });

      it('refuses an empty label key and oversized labels, at commit and on update, changing nothing', async () => {
        const data = randomBytes(40);
        const digest = sha256(data);
        for (const labels of [{ '': 'v' }, { k: 'v'.repeat(4096) }] as Labels[]) {
          const w = await store.writer(ctx, { ref: ref(`bad-labels-${Object.keys(labels)[0]}`), total: data.length, expected: digest });
          await w.write(data);
          await expect(w.commit(data.length, digest, { labels })).rejects.toSatisfy(isInvalidArgument);
          await w.close();
          await expect(store.info(ctx, digest)).rejects.toSatisfy(isNotFound);
        }
        await commitBlob(data, { a: '1' });
        await expect(store.update(ctx, { digest, labels: { '': 'v' } }, ['labels.'])).rejects.toSatisfy(isInvalidArgument);
        await expect(store.update(ctx, { digest, labels: { '': 'v', b: '2' } })).rejects.toSatisfy(isInvalidArgument);
        await expect(store.update(ctx, { digest, labels: { k: 'v'.repeat(4096) } }, ['labels.k'])).rejects.toSatisfy(isInvalidArgument);
        expect((await store.info(ctx, digest)).labels).toEqual({ a: '1' });
      });

      it('rejects updates of fields other than labels', async () => {
        const digest = await commitBlob(randomBytes(30));
        for (const path of ['size', 'digest', 'createdat', 'labelsx']) {
          await expect(store.update(ctx, { digest, labels: {} }, [path])).rejects.toSatisfy(isInvalidArgument);
        }
      });

      it('lists content with filters', async () => {
        const d1 = await commitBlob(randomBytes(101), { team: 'a', tier: '1', 'example.com/kind': 'layer' }, 'l1');
        const d2 = await commitBlob(randomBytes(202), { team: 'a', tier: '2' }, 'l2');
        const d3 = await commitBlob(randomBytes(303), { team: 'b' }, 'l3');
        const mine = (infos: ContentInfo[]) =>
          infos.map((i) => i.digest).filter((d) => [d1, d2, d3].includes(d)).sort();

        const all = await listAll();
        expect(mine(all)).toEqual([d1, d2, d3].sort());
        const i1 = all.find((i) => i.digest === d1);
        expect(i1).toMatchObject({ size: 101, labels: { team: 'a', tier: '1', 'example.com/kind': 'layer' } });
        expect(mine(await listAll(['']))).toEqual([d1, d2, d3].sort());

        expect(mine(await listAll([`digest==${d2}`]))).toEqual([d2]);
        expect(mine(await listAll(['labels.team==a']))).toEqual([d1, d2].sort());
        expect(mine(await listAll(['labels.team==a,labels.tier==2']))).toEqual([d2]);
        expect(mine(await listAll(['labels.tier==2', 'labels.team==b']))).toEqual([d2, d3].sort());
        expect(mine(await listAll(['labels.team!=a']))).toEqual([d3]);
        expect(mine(await listAll(['labels.tier']))).toEqual([d1, d2].sort());
        expect(mine(await listAll(['labels."example.com/kind"==layer']))).toEqual([d1]);
        expect(mine(await listAll(['size==303']))).toEqual([d3]);
        expect(mine(await listAll(['labels.team==nobody']))).toEqual([]);
      });

      it('deletes content', async () => {
        const keep = await commitBlob(randomBytes(64), undefined, 'keep');
        const digest = await commitBlob(randomBytes(64), { a: 'b' }, 'gone');
        await store.delete(ctx, digest);
        await expect(store.info(ctx, digest)).rejects.toSatisfy(isNotFound);
        await expect(store.reader(ctx, digest)).rejects.toSatisfy(isNotFound);
        const listed = (await listAll()).map((i) => i.digest);
        expect(listed).not.toContain(digest);
        expect(listed).toContain(keep);
        await expect(store.delete(ctx, digest)).rejects.toSatisfy(isNotFound);
      });

      it('forgets labels of deleted content when it is written again', async () => {
        const data = randomBytes(77);
        const digest = await commitBlob(data, { stale: 'yes' }, 'first');
        await store.delete(ctx, digest);
        await commitBlob(data, undefined, 'second');
        expect((await store.info(ctx, digest)).labels).toEqual({});
      });
    });

    describe('readers', () => {
      it('reads and streams at offsets, across chunk boundaries', async () => {
        const data = randomBytes(2.5 * 1024 * 1024 + 3);
        const digest = await commitBlob(data);
        const r = await store.reader(ctx, digest);
        try {
          expect(r.size).toBe(data.length);
          expect((await r.read(0, 10)).equals(data.subarray(0, 10))).toBe(true);
          expect((await r.read(1_048_570, 20)).equals(data.subarray(1_048_570, 1_048_590))).toBe(true);
          // Fewer bytes only at the end.
          expect((await r.read(data.length - 5, 100)).equals(data.subarray(data.length - 5))).toBe(true);
          expect((await r.read(data.length, 10)).length).toBe(0);

          expect((await readAll(r, 1_000_000, 1_500_000)).equals(data.subarray(1_000_000, 2_500_000))).toBe(true);
          expect((await readAll(r, 2_000_000)).equals(data.subarray(2_000_000))).toBe(true);
          expect((await readAll(r, 5, 0)).length).toBe(0);
          expect((await readAll(r, data.length - 2, 1000)).equals(data.subarray(data.length - 2))).toBe(true);
          const whole = await readAll(r);
          expect(sha256(whole)).toBe(digest);
        } finally {
          await r.close();
        }
      });

      it('serves concurrent readers of one blob', async () => {
        const data = randomBytes(100_000);
        const digest = await commitBlob(data);
        const readers = await Promise.all([1, 2, 3].map(() => store.reader(ctx, digest)));
        const got = await Promise.all(readers.map((r, i) => r.read(i * 1000, 50_000)));
        got.forEach((buf, i) => expect(buf.equals(data.subarray(i * 1000, i * 1000 + 50_000))).toBe(true));
        await Promise.all(readers.map((r) => r.close()));
      });
    });

    describe('digest validation', () => {
      it.each(INVALID_DIGESTS.map((d) => [d]))('rejects %j', async (digest) => {
        await expect(store.info(ctx, digest)).rejects.toSatisfy(isInvalidArgument);
        await expect(store.reader(ctx, digest)).rejects.toSatisfy(isInvalidArgument);
        await expect(store.delete(ctx, digest)).rejects.toSatisfy(isInvalidArgument);
        await expect(store.update(ctx, { digest, labels: { a: 'b' } }, ['labels.a'])).rejects.toSatisfy(isInvalidArgument);
        if (digest !== '') {
          await expect(store.writer(ctx, { ref: ref('invalid'), expected: digest })).rejects.toSatisfy(isInvalidArgument);
        }
      });
    });
  });
}
