// Runs the TypeScript worker entry in a worker thread when the differ itself runs from its sources (vitest): Node 20
// cannot strip types, so Vite's module runner transforms it, resolving @berth/sys to its sources as
// vitest.shared.ts does. The built package starts dist/worker/worker.js directly and never loads this file.
import { workerData } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';
import { runnerImport } from 'vite';

const sysSrc = fileURLToPath(new URL('../../../../sys/src/index.ts', import.meta.url));
await runnerImport(workerData.entry, {
  configFile: false,
  logLevel: 'error',
  resolve: { alias: [{ find: /^@berth\/sys$/, replacement: sysSrc }] },
});
