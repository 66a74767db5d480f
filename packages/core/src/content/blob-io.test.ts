import { describe, expect, it } from 'vitest';
import { sha256Digest } from '../digest/digest.js';
import { expectFailure } from '../testing/helpers.js';
import { createMemoryContentStore } from '../testing/memory-content-store.js';
import { readBlob, rechunk, writeBlob } from './blob-io.js';

const ctx = { namespace: 'default' };

async function* pieces(...parts: string[]): AsyncGenerator<Buffer> {
  for (const p of parts) yield Buffer.from(p);
}

async function collect(source: AsyncIterable<Buffer>): Promise<string> {
  const out: Buffer[] = [];
  for await (const c of source) out.push(c);
  return Buffer.concat(out).toString();
}

describe('writeBlob / readBlob', () => {
  it('writes, verifies and reads back a blob', async () => {
    const store = createMemoryContentStore();
    const progress: number[] = [];
    const result = await writeBlob(store, ctx, pieces('hello ', 'world'), {
      ref: 'r1',
      total: 11,
      expected: sha256Digest('hello world'),
      labels: { a: 'b' },
      onProgress: (offset) => progress.push(offset),
    });
    expect(result).toEqual({ digest: sha256Digest('hello world'), size: 11, existed: false });
    expect(progress.at(-1)).toBe(11);
    expect((await store.info(ctx, result.digest)).labels).toEqual({ a: 'b' });
    expect(await collect(readBlob(store, ctx, result.digest))).toBe('hello world');
    expect(await collect(readBlob(store, ctx, result.digest, 6, 3))).toBe('wor');
  });

  it('resumes an ingest: skips what is there, or opens a function source at the offset', async () => {
    const store = createMemoryContentStore();
    const w = await store.writer(ctx, { ref: 'r2' });
    await w.write(Buffer.from('abc'));
    await w.close();
    expect((await writeBlob(store, ctx, pieces('ab', 'cdef'), { ref: 'r2' })).digest).toBe(sha256Digest('abcdef'));
    const w2 = await store.writer(ctx, { ref: 'r3' });
    await w2.write(Buffer.from('xyz'));
    await w2.close();
    const asked: number[] = [];
    const result = await writeBlob(store, ctx, (offset) => { asked.push(offset); return pieces('123'); }, { ref: 'r3' });
    expect(asked).toEqual([3]);
    expect(result.digest).toBe(sha256Digest('xyz123'));
  });

  it('treats a blob that exists as success without reading the source', async () => {
    const store = createMemoryContentStore();
    const digest = (await writeBlob(store, ctx, pieces('same'), { ref: 'r4' })).digest;
    let called = false;
    const result = await writeBlob(store, ctx, () => { called = true; return pieces('same'); }, { ref: 'r5', expected: digest, total: 4 });
    expect(result).toEqual({ digest, size: 4, existed: true });
    expect(called).toBe(false);
  });

  it('keeps a failed ingest for a retry, or discards it when asked', async () => {
    const store = createMemoryContentStore();
    const wrong = sha256Digest('other');
    await expectFailure(writeBlob(store, ctx, pieces('data'), { ref: 'kept', expected: wrong }), 'failed-precondition');
    expect((await store.status(ctx, 'kept')).offset).toBe(4);
    await expectFailure(writeBlob(store, ctx, pieces('data'), { ref: 'gone', expected: wrong, discardOnCommitFailure: true }), 'failed-precondition');
    await expectFailure(store.status(ctx, 'gone'), 'not-found');
  });

  it('rechunks, and refuses input shorter than the resume offset', async () => {
    const chunks: string[] = [];
    for await (const c of rechunk(pieces('ab', 'cdefg', '', 'h'), 3)) chunks.push(c.toString());
    expect(chunks).toEqual(['abc', 'def', 'gh']);
    await expectFailure(collect(rechunk(pieces('ab'), 2, 5)), 'invalid-argument', 'input ended 3 bytes before');
  });
});
