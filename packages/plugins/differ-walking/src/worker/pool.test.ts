// The differ's worker pool seen from the API side: while big layers unpack, the main thread's event loop keeps
// turning (the fs work and hashing run in workers), and several layers apply at once.
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { compress, digestOf, gnuTar, hasRoot, mediaTypeOf, openTestDiffer, putBlob, removeDir, tempDir, treeOf } from '../testing-fixtures/layers.js';

const PROBE = `
const { parentPort } = require('node:worker_threads');
let last = performance.now(), max = 0;
const timer = setInterval(() => { const now = performance.now(); max = Math.max(max, now - last); last = now; }, 5);
parentPort.once('message', () => { clearInterval(timer); parentPort.postMessage(max); });
parentPort.postMessage('ready');
`;

/**
 * The longest gap between ticks of a 5 ms interval on the main thread while `run` runs, and the same in a thread
 * of its own that does nothing else. On this shared machine the OS alone delays timers by tens of milliseconds
 * under load; a stall of the main loop is what the main thread shows beyond what the idle thread shows.
 */
async function longestStall<T>(run: () => Promise<T>): Promise<{ result: T; stallMs: number; ticks: number; osStallMs: number }> {
  const probe = new Worker(PROBE, { eval: true });
  await new Promise((resolve) => probe.once('message', resolve));
  let last = performance.now();
  let stallMs = 0;
  let ticks = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    stallMs = Math.max(stallMs, now - last);
    last = now;
    ticks++;
  }, 5);
  try {
    const result = await run();
    clearInterval(timer);
    const osStallMs = await new Promise<number>((resolve) => {
      probe.once('message', resolve);
      probe.postMessage('stop');
    });
    return { result, stallMs, ticks, osStallMs };
  } finally {
    clearInterval(timer);
    await probe.terminate();
  }
}

describe.skipIf(!hasRoot())('the worker pool', () => {
  let work: string;
  let t: Awaited<ReturnType<typeof openTestDiffer>>;
  let tar: Buffer;

  beforeEach(async () => {
    work = tempDir();
    const source = join(work, 'source');
    const names: string[] = [];
    for (let d = 0; d < 10; d++) {
      mkdirSync(join(source, `d${d}`), { recursive: true });
      names.push(`d${d}`);
      for (let f = 0; f < 100; f++) {
        writeFileSync(join(source, `d${d}/f${f}`), randomBytes(512 + f * 8));
        names.push(`d${d}/f${f}`);
      }
    }
    writeFileSync(join(source, 'big'), randomBytes(24 << 20));
    names.push('big');
    tar = gnuTar(source, names);
    t = await openTestDiffer({ workers: 3 });
  });
  afterEach(async () => {
    await t.close();
    removeDir(work);
  });

  it('keeps the event loop turning during a big apply (never blocked for more than 100 ms)', async () => {
    const desc = await putBlob(t.store, t.ctx, compress(tar, 'gzip'), mediaTypeOf.gzip);
    const target = join(work, 'target');
    mkdirSync(target);
    const { result, stallMs, ticks, osStallMs } = await longestStall(() => t.differ.apply(t.ctx, desc, [{ type: 'bind', source: target, options: ['rbind'] }]));
    expect(result.digest).toBe(digestOf(tar));
    expect(treeOf(target).size).toBe(10 * 101 + 1);
    expect(ticks).toBeGreaterThan(5); // the probe itself ran
    expect(stallMs - osStallMs, `main loop stalled ${stallMs} ms, an idle thread ${osStallMs} ms`).toBeLessThan(100);
  });

  it('applies several layers at once, each into its own target, all correct', async () => {
    const descs = await Promise.all(
      (['gzip', 'zstd', 'none'] as const).map((codec) => putBlob(t.store, t.ctx, compress(tar, codec), mediaTypeOf[codec])),
    );
    const targets = descs.map((_, i) => {
      const dir = join(work, `target${i}`);
      mkdirSync(dir);
      return dir;
    });
    const { result, stallMs, osStallMs } = await longestStall(() =>
      Promise.all(descs.map((desc, i) => t.differ.apply(t.ctx, desc, [{ type: 'bind', source: targets[i]!, options: ['rbind'] }]))),
    );
    expect(result.map((d) => d.digest)).toEqual([digestOf(tar), digestOf(tar), digestOf(tar)]);
    expect(t.differ.pool.peak).toBe(3);
    const first = treeOf(targets[0]!);
    for (const dir of targets.slice(1)) expect(treeOf(dir)).toEqual(new Map([...first].map(([k, v]) => [k, { ...v }])));
    expect(stallMs - osStallMs, `main loop stalled ${stallMs} ms, an idle thread ${osStallMs} ms`).toBeLessThan(100);
  });
});
