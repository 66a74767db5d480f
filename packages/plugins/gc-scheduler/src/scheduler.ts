/**
 * Decides when the metadata store collects garbage, with the policy of containerd's gc/scheduler:
 *
 * - a first collection `startupDelay` after start (none when 0);
 * - a trigger (`schedule()`, `scheduleAndWait()`) collects after `scheduleDelay`; so do `deletionThreshold`
 *   deletions when it is > 0, and, before anything was ever scheduled, a first deletion (threshold 0) or
 *   `mutationThreshold` mutations;
 * - otherwise collections happen on ticks `interval` apart, counted from the end of the last one, and only when
 *   needed (a deletion, `mutationThreshold` mutations, a trigger); `interval` is chosen so collections take at
 *   most `pauseThreshold` of real time (average pause / threshold - average pause), 1s until one has run;
 * - one collection at a time: callers of `scheduleAndWait()` before a run starts share it, callers during a run
 *   wait for the next one; a failure is logged, rejects its waiters and is retried after the last delay + 1s.
 *
 * Two deliberate differences from containerd: when idle, no timer polls (ticks are armed when something needs
 * collecting, on the same grid); and mutations that happen during a collection count towards the next one
 * instead of being dropped.
 */
import {
  MetricsRegistry,
  nullLogger,
  UnavailableError,
  type GarbageCollectable,
  type GarbageCollector,
  type GCStats,
  type Logger,
} from '@berth/core';
import { formatDuration } from './duration.js';

export interface GcSchedulerOptions {
  readonly pauseThreshold: number;
  readonly deletionThreshold: number;
  readonly mutationThreshold: number;
  readonly scheduleDelayMs: number;
  readonly startupDelayMs: number;
  /** Added to the last delay before a failed collection is retried (default 1s, as containerd). */
  readonly retryBackoffMs?: number;
  readonly log?: Logger;
  /** Where the scheduler counts its collections (the plugin's registry on /v1/metrics). */
  readonly metrics?: MetricsRegistry;
}

export type GcSchedulerSettings = Required<Omit<GcSchedulerOptions, 'log' | 'metrics'>>;

/** The values containerd reports in `ctr plugins ls -d` exports. */
export function schedulerExports(settings: GcSchedulerSettings): Record<string, string> {
  return {
    PauseThreshold: String(settings.pauseThreshold),
    DeletionThreshold: String(settings.deletionThreshold),
    MutationThreshold: String(settings.mutationThreshold),
    ScheduleDelay: formatDuration(settings.scheduleDelayMs),
  };
}

/** Time between ticks until a collection has measured the average pause. */
const INITIAL_INTERVAL_MS = 1000;

interface Waiter {
  resolve(stats: GCStats): void;
  reject(err: unknown): void;
}

const clamp = (value: number, min: number, max: number) => Math.min(Math.max(value, min), max);

export class GcScheduler implements GarbageCollector {
  private readonly meter: ReturnType<typeof meterOf>;
  readonly settings: GcSchedulerSettings;
  private readonly log: Logger;
  private readonly unsubscribe: () => void;

  private timer: NodeJS.Timeout | undefined;
  /** When the armed timer fires. */
  private due: number | undefined;
  private lastDelay = 0;
  private everScheduled = false;

  private triggered = false;
  private deletions = 0;
  private mutations = 0;
  private waiters: Waiter[] = [];

  private running: Promise<void> | undefined;
  private lastCollection: number | undefined;
  private interval = INITIAL_INTERVAL_MS;
  private totalPauseMs = 0;
  private collections = 0;
  private last: GCStats | undefined;
  private closed = false;

  constructor(
    private readonly collectable: GarbageCollectable,
    options: GcSchedulerOptions,
  ) {
    this.settings = {
      pauseThreshold: clamp(options.pauseThreshold, 0, 0.5),
      deletionThreshold: options.deletionThreshold,
      mutationThreshold: Math.max(options.mutationThreshold, 0),
      scheduleDelayMs: Math.max(options.scheduleDelayMs, 0),
      startupDelayMs: Math.max(options.startupDelayMs, 0),
      retryBackoffMs: Math.max(options.retryBackoffMs ?? 1000, 0),
    };
    this.log = options.log ?? nullLogger;
    this.meter = meterOf(options.metrics ?? new MetricsRegistry());
    this.unsubscribe = collectable.onMutation((kind) => this.signal(kind));
    if (this.settings.startupDelayMs > 0) this.arm(this.settings.startupDelayMs);
  }

  get lastRun(): GCStats | undefined {
    return this.last;
  }

  schedule(): void {
    this.signal('trigger');
  }

  scheduleAndWait(): Promise<GCStats> {
    if (this.closed) return Promise.reject(new UnavailableError('gc scheduler is closed'));
    const done = new Promise<GCStats>((resolve, reject) => this.waiters.push({ resolve, reject }));
    this.signal('trigger');
    return done;
  }

  /** Stops scheduling, rejects callers still waiting for a future run, and waits for a running collection. */
  async close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      this.unsubscribe();
      clearTimeout(this.timer);
      this.timer = this.due = undefined;
      for (const waiter of this.waiters.splice(0)) waiter.reject(new UnavailableError('gc scheduler is closed'));
    }
    await this.running;
  }

  private signal(kind: 'delete' | 'write' | 'trigger'): void {
    if (this.closed) return;
    if (kind === 'trigger') this.triggered = true;
    else this.mutations++;
    if (kind === 'delete') this.deletions++;
    this.reconsider();
  }

  /** Something needs collecting at the next tick. */
  private needed(): boolean {
    const { mutationThreshold } = this.settings;
    return this.triggered || this.deletions > 0 || (mutationThreshold > 0 && this.mutations >= mutationThreshold);
  }

  /** Something needs collecting after `scheduleDelay`, not at the next tick. */
  private urgent(): boolean {
    const { deletionThreshold, mutationThreshold } = this.settings;
    if (this.triggered || (deletionThreshold > 0 && this.deletions >= deletionThreshold)) return true;
    return (
      !this.everScheduled &&
      ((deletionThreshold === 0 && this.deletions > 0) || (mutationThreshold > 0 && this.mutations >= mutationThreshold))
    );
  }

  private reconsider(): void {
    if (this.closed || this.running) return;
    const now = Date.now();
    const { scheduleDelayMs } = this.settings;
    if (this.urgent()) {
      if (this.due === undefined || this.due > now + scheduleDelayMs) this.arm(scheduleDelayMs);
    } else if (this.due === undefined && this.lastCollection !== undefined && this.needed()) {
      const sinceLast = now - this.lastCollection;
      this.arm(this.interval > 0 ? this.interval - (sinceLast % this.interval) : 0);
    }
  }

  private arm(delayMs: number): void {
    clearTimeout(this.timer);
    this.everScheduled = true;
    this.lastDelay = delayMs;
    this.due = Date.now() + delayMs;
    this.timer = setTimeout(() => this.fire(), delayMs);
  }

  private fire(): void {
    this.timer = this.due = undefined;
    if (this.closed || (this.lastCollection !== undefined && !this.needed())) return;
    const run = this.collect().then((ok) => {
      this.running = undefined;
      if (this.closed) return;
      if (ok) this.reconsider();
      else this.arm(this.lastDelay + this.settings.retryBackoffMs);
    });
    this.running = run;
  }

  /** One collection; never rejects. Counters seen before it starts are its own; later ones wait for the next. */
  private async collect(): Promise<boolean> {
    const waiters = this.waiters.splice(0);
    const taken = { triggered: this.triggered, deletions: this.deletions, mutations: this.mutations };
    this.triggered = false;
    this.deletions = this.mutations = 0;
    try {
      const stats = await this.collectable.garbageCollect();
      this.lastCollection = Date.now();
      this.collections++;
      this.totalPauseMs += stats.durationMs;
      if (this.settings.pauseThreshold > 0) {
        const average = this.totalPauseMs / this.collections;
        this.interval = average / this.settings.pauseThreshold - average;
      }
      this.last = stats;
      this.meter.pause.observe(stats.durationMs / 1000);
      this.meter.runs.inc();
      this.meter.last.set(this.lastCollection / 1000);
      for (const [kind, n] of Object.entries(stats.removed)) this.meter.removed.inc({ kind }, n);
      this.log.debug('garbage collected', { d: formatDuration(stats.durationMs) });
      for (const waiter of waiters) waiter.resolve(stats);
      return true;
    } catch (err) {
      this.lastCollection = Date.now();
      this.triggered ||= taken.triggered;
      this.deletions += taken.deletions;
      this.mutations += taken.mutations;
      this.meter.failures.inc();
      this.log.error('garbage collection failed', { error: err });
      for (const waiter of waiters) waiter.reject(err);
      return false;
    }
  }
}

/** The scheduler's metrics: how long collections pause writers, what they remove, how often they fail. */
function meterOf(registry: MetricsRegistry) {
  return {
    pause: registry.histogram('berth_gc_pause_seconds', 'Time garbage collections held the metadata store exclusively.', [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5]),
    removed: registry.counter('berth_gc_removed_total', 'Resources removed by garbage collection, by kind.', ['kind']),
    failures: registry.counter('berth_gc_failures_total', 'Garbage collections that failed (retried with backoff).'),
    runs: registry.counter('berth_gc_runs_total', 'Garbage collections that completed.'),
    last: registry.gauge('berth_gc_last_run_timestamp_seconds', 'When the last completed garbage collection ended (unix seconds).'),
  };
}
