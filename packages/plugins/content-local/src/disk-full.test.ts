// The raw store on a full tmpfs: a write that does not fit fails with `write <ingest>/data: no space left on
// device`, keeps exactly the bytes that reached the file (offset and running digest agree with them), leaves no
// blob, and the ingest resumes and commits once space is freed; labels are never torn.
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { errdefOf, sha256Digest as sha256, sha256Hex, wireMessageOf, type OpContext } from '@berth/core';
import { mountTmpfs, tmpfsUnavailable, type Tmpfs } from '@berth/core/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { LocalContentStore } from './local-content-store.js';

const ctx: OpContext = { namespace: '' };
const KiB = 1024;

describe.skipIf(tmpfsUnavailable() !== undefined)('content-local on a full disk', () => {
  let fs: Tmpfs | undefined;
  let store: LocalContentStore | undefined;
  afterEach(async () => {
    try {
      await store?.close();
    } finally {
      store = undefined;
      await fs?.dispose();
      fs = undefined;
    }
  });

  it('fails the write with the disk error, loses no acknowledged byte and resumes once there is space', async () => {
    fs = await mountTmpfs(2 << 20);
    store = await LocalContentStore.open({ root: join(fs.path, 'content') });
    const labelled = randomBytes(10 * KiB);
    const w0 = await store.writer(ctx, { ref: 'labelled' });
    await w0.write(labelled);
    await w0.commit(labelled.length, sha256(labelled), { labels: { keep: 'me' } });

    await fs.fill({ leave: 128 * KiB });
    const data = randomBytes(512 * KiB);
    const w = await store.writer(ctx, { ref: 'big', total: data.length, expected: sha256(data) });
    const err = await w.write(data).catch((e: unknown) => e);
    const dataFile = join(fs.path, 'content', 'ingest', sha256Hex('big'), 'data');
    expect(errdefOf(err)).toBe('unknown');
    expect(wireMessageOf(err)).toBe(`write ${dataFile}: no space left on device`);
    const { offset } = await w.status();
    expect(offset).toBeLessThan(data.length);
    // The running digest covers exactly the bytes on disk.
    const onDisk = await readFile(dataFile);
    expect(onDisk.length).toBe(offset);
    expect(w.digest()).toBe(sha256(data.subarray(0, offset)));
    expect(onDisk.equals(data.subarray(0, offset))).toBe(true);
    // Labels of the raw store are rewritten atomically: a refused update leaves the old ones.
    await expect(store.update(ctx, { digest: sha256(labelled), labels: { keep: 'me', ...manyLabels(60) } })).rejects.toThrow(
      /no space left on device$/,
    );
    expect((await store.info(ctx, sha256(labelled))).labels).toEqual({ keep: 'me' });
    await w.close().catch(() => undefined);
    await expect(store.info(ctx, sha256(data))).rejects.toThrow(/not found/);

    await fs.unfill();
    const resumed = await store.writer(ctx, { ref: 'big', total: data.length, expected: sha256(data) });
    expect((await resumed.status()).offset).toBe(offset);
    await resumed.write(data.subarray(offset));
    await resumed.commit(data.length, sha256(data));
    expect((await store.info(ctx, sha256(data))).size).toBe(data.length);
  });
});

/** Labels that together need far more room than the full disk has, each within containerd's 4 KiB limit. */
function manyLabels(count: number): Record<string, string> {
  return Object.fromEntries(Array.from({ length: count }, (_, i) => [`more-${i}`, 'x'.repeat(4000)]));
}
