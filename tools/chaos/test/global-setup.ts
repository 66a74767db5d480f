// Gives every phase a directory for its summary row and the run's random seed, and prints the rows as one table
// when the run ends.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { budget } from '../src/budget.js';
import { readRows, renderTable } from '../src/summary.js';

declare module 'vitest' {
  export interface ProvidedContext {
    chaosResultsDir: string;
    chaosSeed: number;
  }
}

export default function setup(project: TestProject): () => void {
  const dir = mkdtempSync(join(tmpdir(), 'berth-chaos-results-'));
  const seed = budget.seed ?? Date.now() % 1_000_000;
  project.provide('chaosResultsDir', dir);
  project.provide('chaosSeed', seed);
  return () => {
    const rows = readRows(dir);
    rmSync(dir, { recursive: true, force: true });
    const settings = `seed ${seed}, SIGKILL budget ${budget.killSeconds} s${budget.cycles ? ` or ${budget.cycles} cycles` : ''}, stall bound ${budget.stallMs} ms`;
    process.stdout.write(`\nberth chaos summary (${settings}; replay with --seed ${seed})\n${renderTable(rows)}\n\n`);
  };
}
