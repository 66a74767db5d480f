import { link, mkdir, mkdtemp, open, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expectFailure } from '@berth/core/testing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { diskUsage } from './usage.js';

describe('diskUsage (containerd fs.DiskUsage)', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'berth-usage-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const blocks = async (path: string) => (await stat(path)).blocks * 512;

  it('counts every inode once, the root included, and the bytes allocated to each', async () => {
    await mkdir(join(dir, 'sub'));
    await writeFile(join(dir, 'sub', 'a'), Buffer.alloc(10_000, 1));
    await writeFile(join(dir, 'b'), 'x');
    await link(join(dir, 'sub', 'a'), join(dir, 'hardlink'));
    await link(join(dir, 'sub', 'a'), join(dir, 'sub', 'hardlink2'));
    await symlink('sub/a', join(dir, 'symlink'));
    const usage = await diskUsage(dir);
    // root, sub, a (three names), b, symlink
    expect(usage.inodes).toBe(5);
    const { lstat } = await import('node:fs/promises');
    const expected = (await blocks(dir)) + (await blocks(join(dir, 'sub'))) + (await blocks(join(dir, 'sub', 'a'))) + (await blocks(join(dir, 'b'))) + (await lstat(join(dir, 'symlink'))).blocks * 512;
    expect(usage.size).toBe(expected);
    expect(usage.size).toBeGreaterThanOrEqual(10_000);
  });

  it('counts what a sparse file holds, not its length', async () => {
    const fh = await open(join(dir, 'sparse'), 'w');
    await fh.write(Buffer.from('end'), 0, 3, 1 << 30);
    await fh.close();
    const usage = await diskUsage(dir);
    expect(usage.inodes).toBe(2);
    expect(usage.size).toBeLessThan(1 << 20);
    expect(usage.size).toBe((await blocks(dir)) + (await blocks(join(dir, 'sparse'))));
  });

  it('fails for a root that does not exist, and stops when aborted', async () => {
    await expectFailure(diskUsage(join(dir, 'missing')), 'unknown', 'no such file or directory');
    for (let i = 0; i < 50; i++) await writeFile(join(dir, `f${i}`), '');
    const aborted = new AbortController();
    aborted.abort();
    await expectFailure(diskUsage(dir, aborted.signal), 'cancelled');
  });

  it('lets the event loop run while it walks a big tree', async () => {
    for (let d = 0; d < 20; d++) {
      await mkdir(join(dir, `d${d}`));
      await Promise.all(Array.from({ length: 500 }, (_, i) => writeFile(join(dir, `d${d}`, `f${i}`), 'x')));
    }
    // Both measures below fail for a walk that never yields: the timer would not fire until it ended. The bound
    // on the stall is generous (several engineers share two cores here); the count of timer turns is the sharp one.
    let longest = 0;
    let turns = 0;
    let last = performance.now();
    const timer = setInterval(() => {
      const now = performance.now();
      longest = Math.max(longest, now - last);
      last = now;
      turns++;
    }, 1);
    const started = performance.now();
    let took: number;
    try {
      const usage = await diskUsage(dir);
      took = performance.now() - started;
      expect(usage.inodes).toBe(1 + 20 + 20 * 500);
    } finally {
      clearInterval(timer);
    }
    expect(longest, 'the longest time the event loop was held, in ms').toBeLessThan(250);
    // One turn at least every 25 ms of walking (slices are 5 ms).
    expect(turns, `timer turns during a ${took.toFixed(0)} ms walk`).toBeGreaterThanOrEqual(Math.floor(took / 25));
  });
});
