// Runs a TypeScript module of this package in a plain Node process (Node 20 cannot strip types): Vite's module
// runner transforms it, resolving @berth/core to its sources. Usage: node run-ts.mjs <file.ts> args...; the
// module's `main(...args)` is awaited.
import 'reflect-metadata';
import { fileURLToPath } from 'node:url';
import { runnerImport } from 'vite';

const coreSrc = fileURLToPath(new URL('../../../../core/src/index.ts', import.meta.url));
const [entry, ...args] = process.argv.slice(2);
const { module } = await runnerImport(entry, {
  configFile: false,
  logLevel: 'error',
  resolve: { alias: [{ find: /^@berth\/core$/, replacement: coreSrc }] },
});
await module.main(...args);
