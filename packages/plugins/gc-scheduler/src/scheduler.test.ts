import { createLogger, isUnavailable, type GarbageCollectable, type GCStats } from '@berth/core';
import { afterEach, describe, expect, it } from 'vitest';
import { GcScheduler, schedulerExports, type GcSchedulerOptions } from './scheduler.js';

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

async function waitFor(condition: () => boolean, timeoutMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(5);
  }
}

/** A stand-in for the metadata store: counts collections, can be slow or fail, emits mutations on demand. */
class FakeCollectable implements GarbageCollectable {
  runs = 0;
  active = 0;
  maxActive = 0;
  /** How long garbageCollect() takes (real time). */
  takesMs = 0;
  /** The pause it reports, which drives the scheduler's interval. */
  reportsMs = 0;
  failures: Error[] = [];
  readonly listeners = new Set<(kind: 'delete' | 'write') => void>();

  async garbageCollect(): Promise<GCStats> {
    this.runs++;
    this.active++;
    this.maxActive = Math.max(this.maxActive, this.active);
    try {
      await sleep(this.takesMs);
      const failure = this.failures.shift();
      if (failure) throw failure;
      return {
        startedAt: new Date(),
        durationMs: this.reportsMs,
        removed: { content: this.runs, ingests: 0, snapshots: 0, leases: 0 },
      };
    } finally {
      this.active--;
    }
  }

  onMutation(listener: (kind: 'delete' | 'write') => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  emit(kind: 'delete' | 'write', times = 1): void {
    for (let i = 0; i < times; i++) for (const listener of this.listeners) listener(kind);
  }
}

const schedulers: GcScheduler[] = [];
afterEach(async () => {
  await Promise.all(schedulers.splice(0).map((s) => s.close()));
});

function start(store: GarbageCollectable, options: Partial<GcSchedulerOptions> = {}): GcScheduler {
  const scheduler = new GcScheduler(store, {
    pauseThreshold: 0.02,
    deletionThreshold: 0,
    mutationThreshold: 100,
    scheduleDelayMs: 0,
    startupDelayMs: 0,
    ...options,
  });
  schedulers.push(scheduler);
  return scheduler;
}

describe('GcScheduler', () => {
  it('collects once after the startup delay, and not at all without one', async () => {
    const delayed = new FakeCollectable();
    start(delayed, { startupDelayMs: 40 });
    const none = new FakeCollectable();
    start(none, { startupDelayMs: 0 });
    await sleep(10);
    expect(delayed.runs).toBe(0);
    await waitFor(() => delayed.runs === 1);
    await sleep(60);
    expect(delayed.runs).toBe(1); // nothing needs collecting afterwards
    expect(none.runs).toBe(0);
  });

  it('lets concurrent scheduleAndWait() callers share one collection', async () => {
    const store = new FakeCollectable();
    store.takesMs = 10;
    const gc = start(store);
    const results = await Promise.all(Array.from({ length: 5 }, () => gc.scheduleAndWait()));
    expect(store.runs).toBe(1);
    for (const stats of results) expect(stats).toBe(results[0]);
    expect(gc.lastRun).toBe(results[0]);
  });

  it('makes a caller that arrives during a collection wait for the next one, never running two at once', async () => {
    const store = new FakeCollectable();
    store.takesMs = 40;
    const gc = start(store);
    const first = gc.scheduleAndWait();
    await waitFor(() => store.active === 1);
    const second = gc.scheduleAndWait();
    const third = gc.scheduleAndWait();
    store.emit('delete', 3);
    gc.schedule();
    const [a, b, c] = await Promise.all([first, second, third]);
    expect(a.removed.content).toBe(1);
    expect(b.removed.content).toBe(2);
    expect(c).toBe(b);
    expect(store.maxActive).toBe(1);
    await sleep(60);
    expect(store.runs).toBe(2);
  });

  it('waits schedule_delay after a trigger', async () => {
    const store = new FakeCollectable();
    const gc = start(store, { scheduleDelayMs: 80 });
    const started = Date.now();
    gc.schedule();
    await sleep(30);
    expect(store.runs).toBe(0);
    await waitFor(() => store.runs === 1);
    expect(Date.now() - started).toBeGreaterThanOrEqual(75);
  });

  it('collects at once after deletion_threshold deletions, not before', async () => {
    const store = new FakeCollectable();
    start(store, { deletionThreshold: 3 });
    store.emit('delete', 2);
    await sleep(40);
    expect(store.runs).toBe(0);
    store.emit('delete');
    await waitFor(() => store.runs === 1);
  });

  it('with deletion_threshold 0, collects the first deletion at once and later ones on the next tick', async () => {
    const store = new FakeCollectable();
    store.reportsMs = 4; // pause 0.02 -> interval 4 / 0.02 - 4 = 196ms
    start(store);
    store.emit('delete');
    await waitFor(() => store.runs === 1);
    const firstEnded = Date.now();
    store.emit('delete');
    await sleep(60);
    expect(store.runs).toBe(1);
    await waitFor(() => store.runs === 2);
    expect(Date.now() - firstEnded).toBeGreaterThanOrEqual(150);
  });

  it('collects after mutation_threshold writes: at once before anything ran, on the next tick afterwards', async () => {
    const store = new FakeCollectable();
    store.reportsMs = 2; // interval 98ms
    start(store, { mutationThreshold: 3 });
    store.emit('write', 2);
    await sleep(30);
    expect(store.runs).toBe(0);
    store.emit('write');
    await waitFor(() => store.runs === 1);

    store.emit('write', 2);
    await sleep(250); // more than two intervals: writes below the threshold never collect
    expect(store.runs).toBe(1);
    store.emit('write');
    await waitFor(() => store.runs === 2);
  });

  it('counts mutations made during a collection towards the next one', async () => {
    const store = new FakeCollectable();
    store.takesMs = 30;
    store.reportsMs = 1; // interval 49ms
    const gc = start(store);
    const first = gc.scheduleAndWait();
    await waitFor(() => store.active === 1);
    store.emit('delete');
    await first;
    await waitFor(() => store.runs === 2);
  });

  it('rejects the waiters of a failed collection, logs it and retries after a back-off', async () => {
    const store = new FakeCollectable();
    const failure = new Error('disk on fire');
    store.failures.push(failure);
    const lines: string[] = [];
    const gc = start(store, { retryBackoffMs: 50, log: createLogger({ write: (l) => lines.push(l) }) });
    await expect(gc.scheduleAndWait()).rejects.toBe(failure);
    expect(lines.some((l) => l.includes('level=error') && l.includes('garbage collection failed'))).toBe(true);
    expect(gc.lastRun).toBeUndefined();
    const failedAt = Date.now();
    await waitFor(() => store.runs === 2);
    expect(Date.now() - failedAt).toBeGreaterThanOrEqual(40);
    await waitFor(() => gc.lastRun !== undefined);
    expect(gc.lastRun!.removed.content).toBe(2);
  });

  it('stops on close: no more timers, waits for the running collection, rejects later waiters', async () => {
    const store = new FakeCollectable();
    store.takesMs = 40;
    const gc = start(store, { startupDelayMs: 1000 });
    const running = gc.scheduleAndWait();
    await waitFor(() => store.active === 1);
    const next = gc.scheduleAndWait().catch((e: unknown) => e);
    await gc.close();
    expect(store.active).toBe(0);
    await expect(running).resolves.toMatchObject({ removed: { content: 1 } });
    expect(isUnavailable(await next)).toBe(true);
    expect(isUnavailable(await gc.scheduleAndWait().catch((e: unknown) => e))).toBe(true);
    expect(store.listeners.size).toBe(0);
    gc.schedule();
    store.emit('delete', 10);
    await sleep(60);
    expect(store.runs).toBe(1);
    await gc.close(); // idempotent
  });

  it('cancels a pending startup collection on close', async () => {
    const store = new FakeCollectable();
    const gc = start(store, { startupDelayMs: 30 });
    await gc.close();
    await sleep(60);
    expect(store.runs).toBe(0);
  });

  it('clamps its settings as containerd does and reports them as exports', () => {
    const gc = start(new FakeCollectable(), {
      pauseThreshold: 0.9,
      mutationThreshold: -5,
      scheduleDelayMs: -1,
      startupDelayMs: 0,
    });
    expect(gc.settings).toMatchObject({ pauseThreshold: 0.5, mutationThreshold: 0, scheduleDelayMs: 0 });
    expect(schedulerExports(gc.settings)).toEqual({
      PauseThreshold: '0.5',
      DeletionThreshold: '0',
      MutationThreshold: '0',
      ScheduleDelay: '0s',
    });
    expect(start(new FakeCollectable(), { pauseThreshold: -1 }).settings.pauseThreshold).toBe(0);
  });
});
