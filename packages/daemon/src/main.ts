#!/usr/bin/env node
// berthd's entry: tune V8's heap for a daemon first (heap.ts), then load and run the command line.
import { applyHeapFlags } from './heap.js';

applyHeapFlags();
// main() reports its own failures (and exits); loading fails only when the composition itself is refused.
void import('./berthd.js').then(
  ({ berthd }) => berthd.main(),
  (err: unknown) => {
    process.stderr.write(`berthd: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
