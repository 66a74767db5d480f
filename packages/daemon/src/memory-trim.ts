// Gives memory back once berthd goes quiet. After a burst of traffic (large gRPC frames, many connections), what Node
// and V8 freed mostly stays in glibc's heaps: RSS keeps the high-water mark for good. When no call has finished for a
// whole tick and RSS has grown since the last trim, malloc_trim(0) returns the free pages (milliseconds of work,
// done only while idle).
import { mallocTrim } from '@berth/sys';
import type { Logger } from '@berth/core';

export interface MemoryTrimmerOptions {
  readonly log: Logger;
  /** How often to look (default 2 s). */
  readonly intervalMs?: number;
  /** Growth of RSS since the last trim that makes a trim worth doing (default 8 MiB). */
  readonly thresholdBytes?: number;
  /** Stand-ins for tests. */
  readonly trim?: () => boolean;
  readonly rss?: () => number;
}

export class MemoryTrimmer {
  private busy = false;
  private baseline: number;
  private readonly timer: NodeJS.Timeout;
  private readonly trim: () => boolean;
  private readonly rss: () => number;
  private readonly threshold: number;
  trims = 0;

  constructor(private readonly options: MemoryTrimmerOptions) {
    this.trim = options.trim ?? mallocTrim;
    this.rss = options.rss ?? (() => process.memoryUsage.rss());
    this.threshold = options.thresholdBytes ?? 8 * 1024 * 1024;
    this.baseline = this.rss();
    this.timer = setInterval(() => this.tick(), options.intervalMs ?? 2000);
    this.timer.unref();
  }

  /** A call finished, a connection came or went: not idle during this tick. */
  activity = (): void => {
    this.busy = true;
  };

  tick(): void {
    if (this.busy) {
      this.busy = false;
      return;
    }
    const before = this.rss();
    if (before - this.baseline < this.threshold) return;
    const started = performance.now();
    const released = this.trim();
    const after = this.rss();
    this.baseline = after;
    this.trims++;
    this.options.log.debug('gave idle memory back', { released, rssBefore: before, rssAfter: after, ms: Math.round(performance.now() - started) });
  }

  close(): void {
    clearInterval(this.timer);
  }
}
