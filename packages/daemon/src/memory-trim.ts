// Gives memory back once berthd goes quiet. After a burst of traffic (large gRPC frames, many connections), V8 keeps
// the heap pages it grew into and glibc keeps what Node freed: RSS stays at the high-water mark for good. When no call
// has finished for a whole tick and RSS has grown since the last trim (or since start), a full collection compacts
// V8's heap and releases its free pages, then malloc_trim(0) returns glibc's (milliseconds of work, only while idle).
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { mallocTrim } from '@berth/sys';
import type { Logger } from '@berth/core';

/** V8's full collection without starting Node with --expose-gc: the flag set at run time exposes it to new contexts. */
function fullCollection(): () => void {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  setFlagsFromString('--no-expose-gc');
  return gc;
}

export interface MemoryTrimmerOptions {
  readonly log: Logger;
  /** How often to look (default 2 s). */
  readonly intervalMs?: number;
  /** Growth of RSS since the last trim that makes a trim worth doing (default 8 MiB). */
  readonly thresholdBytes?: number;
  /** Stand-ins for tests. */
  readonly trim?: () => boolean;
  readonly collect?: () => void;
  readonly rss?: () => number;
}

export class MemoryTrimmer {
  private busy = false;
  private baseline: number;
  private readonly timer: NodeJS.Timeout;
  private readonly trim: () => boolean;
  private readonly collect: () => void;
  private readonly rss: () => number;
  private readonly threshold: number;
  trims = 0;

  constructor(private readonly options: MemoryTrimmerOptions) {
    this.trim = options.trim ?? mallocTrim;
    this.collect = options.collect ?? fullCollection();
    this.rss = options.rss ?? (() => process.memoryUsage.rss());
    this.threshold = options.thresholdBytes ?? 8 * 1024 * 1024;
    // Start-up leaves garbage too (the protos parsed, the plugins loaded): the first quiet tick tidies it.
    this.baseline = 0;
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
    this.collect();
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
