/**
 * Cooperative scheduling for long synchronous walks (listing every record of a store, matching an event against
 * every subscriber's filters): the daemon serves all clients from one thread, so such a walk checks in with a
 * TimeSlice after each item and lets the event loop run (a macrotask turn: I/O, timers, other requests) whenever
 * it has held the thread for longer than its budget.
 */
import { setImmediate as nextTurn } from 'node:timers/promises';
import { performance } from 'node:perf_hooks';

/** How long a walk may hold the event loop before it yields, by default. */
export const DEFAULT_SLICE_MS = 5;

export class TimeSlice {
  private start = performance.now();

  constructor(private readonly budgetMs = DEFAULT_SLICE_MS) {}

  /** Whether the budget is spent (the caller should `await yield()` at its next safe point). */
  get expired(): boolean {
    return performance.now() - this.start >= this.budgetMs;
  }

  /** Lets the event loop run once, then starts a new slice. */
  async yield(): Promise<void> {
    await nextTurn();
    this.start = performance.now();
  }

  /** Yields if the budget is spent; otherwise returns at once (no await is needed then). */
  pause(): Promise<void> | undefined {
    return this.expired ? this.yield() : undefined;
  }
}
