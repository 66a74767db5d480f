import { nullLogger } from '@berth/core';
import { afterEach, describe, expect, it } from 'vitest';
import { MemoryTrimmer } from './memory-trim.js';

describe('MemoryTrimmer', () => {
  let trimmer: MemoryTrimmer | undefined;
  afterEach(() => trimmer?.close());

  it('trims only after a quiet tick, and only when RSS grew past the threshold since the last trim', () => {
    let rss = 100;
    let trims = 0;
    let collections = 0;
    trimmer = new MemoryTrimmer({ log: nullLogger, intervalMs: 1e9, thresholdBytes: 10, rss: () => rss, collect: () => collections++, trim: () => { trims++; rss = 95; return true; } });
    trimmer.tick();
    expect(trims).toBe(1); // start-up's garbage, on the first quiet tick
    expect(collections).toBe(1);
    rss = 100;
    trimmer.tick();
    expect(trims).toBe(1); // grown by 5 only
    rss = 150;
    trimmer.activity();
    trimmer.tick();
    expect(trims).toBe(1); // busy during this tick
    trimmer.tick();
    expect(trims).toBe(2); // quiet, grown by 55
    expect(rss).toBe(95);
  });

  it('can run a real full collection', () => {
    let released: boolean | undefined;
    trimmer = new MemoryTrimmer({ log: nullLogger, intervalMs: 1e9, thresholdBytes: 0, trim: () => (released = true) });
    trimmer.tick();
    expect(released).toBe(true);
    expect(trimmer.trims).toBe(1);
  });
});
