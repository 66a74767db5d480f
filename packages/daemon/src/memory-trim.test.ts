import { nullLogger } from '@berth/core';
import { afterEach, describe, expect, it } from 'vitest';
import { MemoryTrimmer } from './memory-trim.js';

describe('MemoryTrimmer', () => {
  let trimmer: MemoryTrimmer | undefined;
  afterEach(() => trimmer?.close());

  it('trims only after a quiet tick, and only when RSS grew past the threshold since the last trim', () => {
    let rss = 100;
    let trims = 0;
    trimmer = new MemoryTrimmer({ log: nullLogger, intervalMs: 1e9, thresholdBytes: 10, rss: () => rss, trim: () => { trims++; rss = 101; return true; } });
    trimmer.tick();
    expect(trims).toBe(0); // no growth yet
    rss = 150;
    trimmer.activity();
    trimmer.tick();
    expect(trims).toBe(0); // busy during this tick
    trimmer.tick();
    expect(trims).toBe(1); // quiet, grown by 50
    expect(rss).toBe(101);
    rss = 105;
    trimmer.tick();
    expect(trims).toBe(1); // grown by 4 only since the trim
  });
});
