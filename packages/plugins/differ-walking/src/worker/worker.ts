// The entry of a differ worker thread: one job at a time (the pool hands out jobs), applying layers or writing
// diffs with synchronous fs calls off the main thread. Imports only what those jobs need (no @berth/core).
import { parentPort } from 'node:worker_threads';
import { runApply } from './apply-job.js';
import { runCompare } from './compare-job.js';
import { serializeError, type Job } from './protocol.js';

if (!parentPort) throw new Error('worker.js is a worker thread entry');
const parent = parentPort;

parent.on('message', (job: Job) => {
  const run = job.kind === 'apply' ? runApply(job) : runCompare(job);
  run
    .catch((err: unknown) => job.port.postMessage({ error: serializeError(err) }))
    .finally(() => {
      job.port.close();
      parent.postMessage({ idle: true });
    });
});
