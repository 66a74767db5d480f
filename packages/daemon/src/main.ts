#!/usr/bin/env node
// berthd's entry: tune V8's heap for a daemon first (heap.ts), then load and run the command line.
import { applyHeapFlags } from './heap.js';

applyHeapFlags();
// command.js reports its own failures (and exits); the import itself cannot fail in a built daemon.
void import('./command.js');
