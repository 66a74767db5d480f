import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isNotFound } from '@berth/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { OpenBlobs, READ_AHEAD_BYTES } from './open-blobs.js';

const DIGEST = `sha256:${'a'.repeat(64)}`;

/** File descriptors of this process that point at `path` (Linux). */
async function openCount(path: string): Promise<number> {
  const { readlink } = await import('node:fs/promises');
  let n = 0;
  for (const fd of await readdir('/proc/self/fd')) {
    const target = await readlink(`/proc/self/fd/${fd}`).catch(() => '');
    if (target === path || target === `${path} (deleted)`) n++;
  }
  return n;
}

describe('OpenBlobs', () => {
  let dir: string;
  let path: string;
  let data: Buffer;
  let blobs: OpenBlobs;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'berth-open-blobs-'));
    path = join(dir, 'blob');
    data = randomBytes(3 * READ_AHEAD_BYTES + 12345);
    await writeFile(path, data);
    blobs = new OpenBlobs();
  });

  afterEach(async () => {
    await blobs.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('shares one handle between readers and keeps it for the next one', async () => {
    const [a, b] = await Promise.all([blobs.acquire(DIGEST, path), blobs.acquire(DIGEST, path)]);
    expect(a.fh).toBe(b.fh);
    expect(a.size).toBe(data.length);
    await a.release();
    await b.release();
    expect(await openCount(path)).toBe(1);
    const c = await blobs.acquire(DIGEST, path);
    expect(c.fh).toBe(a.fh);
    await c.release();
    await c.release(); // a second release is a no-op
    const d = await blobs.acquire(DIGEST, path);
    expect(d.fh).toBe(a.fh);
    await d.release();
  });

  it('serves sequential small reads, random reads and large reads with the right bytes', async () => {
    const h = await blobs.acquire(DIGEST, path);
    const step = 32 * 1024;
    const parts: Buffer[] = [];
    for (let offset = 0; offset < data.length; offset += step) {
      parts.push(Buffer.from(await h.read(offset, Math.min(step, data.length - offset))));
    }
    expect(Buffer.concat(parts).equals(data)).toBe(true);
    for (const [offset, length] of [[7, 100], [READ_AHEAD_BYTES - 3, 10], [2 * READ_AHEAD_BYTES + 1, READ_AHEAD_BYTES + 5], [data.length - 1, 1], [5, 0]] as const) {
      expect((await h.read(offset, length)).equals(data.subarray(offset, offset + length))).toBe(true);
    }
    await h.release();
  });

  it('gives later readers NotFound once a deleted blob is forgotten, while holders keep reading', async () => {
    const held = await blobs.acquire(DIGEST, path);
    await unlink(path);
    blobs.forget(DIGEST);
    await expect(blobs.acquire(DIGEST, path)).rejects.toSatisfy(isNotFound);
    expect((await held.read(100, 50)).equals(data.subarray(100, 150))).toBe(true);
    await held.release();
    expect(await openCount(path)).toBe(0);
  });

  it('does not cache a handle whose blob was forgotten while it was being opened', async () => {
    const opening = blobs.acquire(DIGEST, path);
    blobs.forget(DIGEST);
    const h = await opening;
    await h.release();
    expect(await openCount(path)).toBe(0);
  });

  it('closes idle handles on close, and held ones when released', async () => {
    const other = join(dir, 'other');
    await writeFile(other, 'x');
    const idle = await blobs.acquire(DIGEST, path);
    await idle.release();
    const held = await blobs.acquire(`sha256:${'b'.repeat(64)}`, other);
    await blobs.close();
    expect(await openCount(path)).toBe(0);
    expect(await openCount(other)).toBe(1);
    await held.release();
    expect(await openCount(other)).toBe(0);
  });

  it('closes an idle handle after its time to live', async () => {
    const short = new OpenBlobs({ idleTtlMs: 50 });
    const h = await short.acquire(DIGEST, path);
    await h.release();
    expect(await openCount(path)).toBe(1);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(await openCount(path)).toBe(0);
    await short.close();
  });

  it('stops handing out a handle past its maximum age, so that a blob removed behind its back is noticed', async () => {
    const aging = new OpenBlobs({ maxAgeMs: 50 });
    const held = await aging.acquire(DIGEST, path);
    await unlink(path);
    // Still within the age: the removal is not seen yet.
    const early = await aging.acquire(DIGEST, path);
    expect(early.fh).toBe(held.fh);
    await early.release();
    await new Promise((resolve) => setTimeout(resolve, 100));
    await expect(aging.acquire(DIGEST, path)).rejects.toSatisfy(isNotFound);
    expect((await held.read(0, 10)).equals(data.subarray(0, 10))).toBe(true);
    await held.release();
    expect(await openCount(path)).toBe(0);
    await aging.close();
  });
});
