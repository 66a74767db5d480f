// A pool of worker threads for the differ: at most `size` jobs (layer applies, diffs) run at once, each in a worker
// of its own; more wait in order. Workers start on demand and stop after `idleMs` without a job, so an idle daemon
// holds none (a worker costs about 10 MB). A worker that dies fails the job it had, and the next job gets a new one.
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads';
import type { Job } from './protocol.js';

export type JobSpec = Job extends infer J ? (J extends { port: MessagePort } ? Omit<J, 'port'> : never) : never;

export interface PoolOptions {
  readonly size: number;
  readonly idleMs: number;
}

interface Slot {
  readonly worker: Worker;
  busy: boolean;
  idleTimer: NodeJS.Timeout | undefined;
  /** Fails the running job when the worker dies under it. */
  crash: ((err: Error) => void) | undefined;
}

/** A started job: its port, and a promise that rejects if the worker dies before the job reports. */
export interface RunningJob {
  readonly port: MessagePort;
  readonly crashed: Promise<never>;
}

function workerEntry(): { url: URL; workerData?: unknown } {
  const self = import.meta.url;
  if (self.endsWith('.ts')) {
    return { url: new URL('./ts-worker.mjs', self), workerData: { entry: new URL('./worker.ts', self).pathname } };
  }
  // By the package's name, not relative to this module: inside berthd's bundle (tools/bundle.mjs) this code runs
  // from the bundle's file, while the worker always runs from this package's own dist.
  return { url: pathToFileURL(createRequire(self).resolve('@berth/plugin-differ-walking/worker')) };
}

export class WorkerPool {
  private readonly slots: Slot[] = [];
  private readonly waiting: { give(slot: Slot): void; fail(err: Error): void }[] = [];
  private closed = false;
  /** The most jobs that ran at once (for tests and logs). */
  peak = 0;

  constructor(private readonly options: PoolOptions) {
    if (!(options.size >= 1)) throw new RangeError(`worker pool size must be at least 1, not ${options.size}`);
  }

  get size(): number {
    return this.options.size;
  }

  /** Workers alive now. */
  get alive(): number {
    return this.slots.length;
  }

  get busy(): number {
    return this.slots.filter((s) => s.busy).length;
  }

  /** Waits for a free worker (or starts one), hands it the job and returns the job's port. */
  async start(spec: JobSpec, signal?: AbortSignal): Promise<RunningJob> {
    const slot = await this.acquire(signal);
    const { port1, port2 } = new MessageChannel();
    let crash!: (err: Error) => void;
    const crashed = new Promise<never>((_, reject) => (crash = reject));
    crashed.catch(() => undefined);
    slot.crash = (err) => {
      crash(err);
      port1.close();
    };
    slot.worker.postMessage({ ...spec, port: port2 }, [port2]);
    return { port: port1, crashed };
  }

  private acquire(signal?: AbortSignal): Promise<Slot> {
    if (this.closed) return Promise.reject(new Error('differ worker pool is closed'));
    const free = this.slots.find((s) => !s.busy);
    if (free) return Promise.resolve(this.take(free));
    if (this.slots.length < this.options.size) return Promise.resolve(this.take(this.spawn()));
    return new Promise((resolve, reject) => {
      const waiter = {
        give: (slot: Slot) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(this.take(slot));
        },
        fail: (err: Error) => {
          signal?.removeEventListener('abort', onAbort);
          reject(err);
        },
      };
      const onAbort = () => {
        const i = this.waiting.indexOf(waiter);
        if (i >= 0) this.waiting.splice(i, 1);
        reject(signal!.reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiting.push(waiter);
    });
  }

  private take(slot: Slot): Slot {
    slot.busy = true;
    if (slot.idleTimer) clearTimeout(slot.idleTimer);
    slot.idleTimer = undefined;
    this.peak = Math.max(this.peak, this.busy);
    return slot;
  }

  private spawn(): Slot {
    const entry = workerEntry();
    const worker = new Worker(entry.url, { workerData: entry.workerData, stdout: false, stderr: false });
    const slot: Slot = { worker, busy: false, idleTimer: undefined, crash: undefined };
    worker.on('message', (m: { idle?: boolean }) => {
      if (m.idle) this.release(slot);
    });
    const died = (err: Error) => {
      const i = this.slots.indexOf(slot);
      if (i < 0) return;
      this.slots.splice(i, 1);
      if (slot.idleTimer) clearTimeout(slot.idleTimer);
      slot.crash?.(err);
      slot.crash = undefined;
      // Someone waiting gets a fresh worker in its place.
      const next = this.waiting.shift();
      if (next && !this.closed) next.give(this.spawn());
    };
    worker.on('error', (err) => died(new Error(`differ worker failed: ${err.message}`, { cause: err })));
    worker.on('exit', (code) => died(new Error(`differ worker exited (code ${code})`)));
    this.slots.push(slot);
    return slot;
  }

  private release(slot: Slot): void {
    slot.busy = false;
    slot.crash = undefined;
    const next = this.waiting.shift();
    if (next) {
      next.give(slot);
      return;
    }
    slot.idleTimer = setTimeout(() => {
      if (slot.busy) return;
      const i = this.slots.indexOf(slot);
      if (i >= 0) this.slots.splice(i, 1);
      void slot.worker.terminate();
    }, this.options.idleMs);
    slot.idleTimer.unref();
  }

  /** Stops every worker (a running job fails). */
  async close(): Promise<void> {
    this.closed = true;
    for (const w of this.waiting.splice(0)) w.fail(new Error('differ worker pool is closed'));
    const slots = this.slots.splice(0);
    await Promise.all(
      slots.map(async (s) => {
        if (s.idleTimer) clearTimeout(s.idleTimer);
        s.crash?.(new Error('differ worker pool closed'));
        await s.worker.terminate();
      }),
    );
  }
}
