// LARGE TEST, skipped by default: set BERTH_TEST_LARGE=1 to run it (writes and reads ~384 MiB in a temp dir, a few seconds).
// It checks that memory stays flat while a blob far bigger than the allowed growth is written, resumed (the running
// digest rebuilt from disk), committed and streamed back; the same code paths serve a 4 GiB blob.
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { OpContext } from '@berth/core';
import { afterAll, describe, expect, it } from 'vitest';
import { LocalContentStore } from './local-content-store.js';

const MiB = 1024 * 1024;
const SIZE = 384 * MiB;
/** Allowed growth of resident memory; a store that buffered the blob would need at least SIZE. */
const BUDGET = 96 * MiB;
const ctx: OpContext = { namespace: 'large' };

describe.skipIf(!process.env.BERTH_TEST_LARGE)('LARGE: 384 MiB blob with flat memory (BERTH_TEST_LARGE=1)', () => {
  let dir: string | undefined;
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('writes, resumes, commits and streams without holding the blob in memory', { timeout: 120_000 }, async () => {
    dir = await mkdtemp(join(tmpdir(), 'berth-content-large-'));
    const store = await LocalContentStore.open({ root: join(dir, 'content') });
    const baseline = process.memoryUsage().rss;
    let peak = baseline;
    const sample = () => {
      peak = Math.max(peak, process.memoryUsage().rss);
    };

    // One reused 1 MiB buffer with changing content: the writer must not keep references to what it was given.
    const chunk = Buffer.alloc(MiB);
    const expected = createHash('sha256');
    const fill = (i: number) => {
      chunk.fill(i & 0xff);
      chunk.writeUInt32BE(i, 0);
      expected.update(chunk);
      return chunk;
    };

    let w = await store.writer(ctx, { ref: 'large', total: SIZE });
    for (let i = 0; i < SIZE / MiB / 2; i++) {
      await w.write(fill(i));
      sample();
    }
    await w.close();
    w = await store.writer(ctx, { ref: 'large' }); // re-hashes 192 MiB from disk
    sample();
    for (let i = SIZE / MiB / 2; i < SIZE / MiB; i++) {
      await w.write(fill(i));
      sample();
    }
    const digest = `sha256:${expected.digest('hex')}`;
    await w.commit(SIZE, digest);
    expect((await store.info(ctx, digest)).size).toBe(SIZE);

    const r = await store.reader(ctx, digest);
    const check = createHash('sha256');
    for await (const part of r.stream()) {
      check.update(part);
      sample();
    }
    await r.close();
    expect(`sha256:${check.digest('hex')}`).toBe(digest);
    await store.close();

    const growth = peak - baseline;
    expect(growth, `rss grew by ${(growth / MiB).toFixed(1)} MiB`).toBeLessThan(BUDGET);
  });
});
