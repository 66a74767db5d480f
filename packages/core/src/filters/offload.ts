/**
 * Regexp matches too costly for the event loop run on a worker thread. RE2 keeps a match linear, but linear in
 * `program size × input length`: `(?:a?){1000}a{1000}` against a 4 KiB label takes about 400 ms in re2js, and the
 * daemon serves every client from one thread. A match whose estimated cost (GoRegexp.cost) is above
 * INLINE_MATCH_COST goes here instead; its request waits, the others go on.
 *
 * One worker, started on the first such match (never in processes that do not need it) and unref'd while idle so
 * it never keeps a process alive; matches queue on it in order. It compiles what the main thread compiled (the
 * adapted source, so its verdicts are the same) and keeps the last few programs. If it dies, the matches it held
 * fail with UnavailableError and the next one starts a new worker.
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { UnavailableError } from '../errdefs/index.js';

/** Above this estimated cost (instructions × characters; ~5 ms at re2js's slowest), a match leaves the event loop. */
export const INLINE_MATCH_COST = 1 << 16;

// Plain CommonJS, evaluated by the worker: it needs nothing but re2js.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { RE2JS } = require(workerData.engine);
const programs = new Map();
parentPort.on('message', ({ id, source, input }) => {
  try {
    let re = programs.get(source);
    if (re === undefined) {
      re = RE2JS.compile(source);
      programs.set(source, re);
      if (programs.size > 32) programs.delete(programs.keys().next().value);
    }
    parentPort.postMessage({ id, matched: re.test(input) });
  } catch (err) {
    parentPort.postMessage({ id, error: String((err && err.message) || err) });
  }
});
`;

interface Pending {
  resolve(matched: boolean): void;
  reject(err: Error): void;
}

type Reply = { id: number; matched: boolean } | { id: number; error: string };

class OffThreadMatcher {
  private worker: Worker | undefined;
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;

  match(source: string, input: string): Promise<boolean> {
    const worker = this.worker ?? this.start();
    const id = this.nextId++;
    if (this.pending.size === 0) worker.ref();
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      worker.postMessage({ id, source, input });
    });
  }

  /** Matches in flight (for tests). */
  get inFlight(): number {
    return this.pending.size;
  }

  private start(): Worker {
    const engine = createRequire(import.meta.url).resolve('re2js');
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { engine } });
    worker.unref();
    worker.on('message', (reply: Reply) => this.settle(reply));
    const fail = (err: Error) => {
      if (this.worker !== worker) return;
      this.worker = undefined;
      const pending = [...this.pending.values()];
      this.pending.clear();
      for (const p of pending) p.reject(new UnavailableError('regexp matcher thread failed', { cause: err }));
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`exited with code ${code}`)));
    this.worker = worker;
    return worker;
  }

  private settle(reply: Reply): void {
    const p = this.pending.get(reply.id);
    if (!p) return;
    this.pending.delete(reply.id);
    if (this.pending.size === 0) this.worker?.unref();
    if ('error' in reply) p.reject(new UnavailableError(`regexp match failed: ${reply.error}`));
    else p.resolve(reply.matched);
  }
}

const matcher = new OffThreadMatcher();

/** Runs `test(input)` of an adapted regexp source on the worker thread. */
export function matchOffThread(source: string, input: string): Promise<boolean> {
  return matcher.match(source, input);
}

/** Matches waiting on the worker thread (for tests). */
export function offThreadMatchesInFlight(): number {
  return matcher.inFlight;
}
