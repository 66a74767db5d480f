#!/usr/bin/env node
// Adds up the vitest JSON reports (test-results.json) of every package (packages/* and the tools/chaos suite) and
// prints `N passed, N failed[, N skipped]`.
// Exits non-zero when any test failed or a suite failed to load.
import { readdirSync, readFileSync, existsSync, statSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const reports = [];
const walk = (dir, depth) => {
  if (depth > 3) return;
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name.startsWith('.')) continue;
    const path = join(dir, name);
    if (name === 'test-results.json') reports.push(path);
    else if (statSync(path).isDirectory()) walk(path, depth + 1);
  }
};
for (const dir of ['packages', 'tools']) if (existsSync(join(root, dir))) walk(join(root, dir), 0);

let passed = 0, failed = 0, skipped = 0, brokenSuites = 0;
for (const file of reports) {
  const r = JSON.parse(readFileSync(file, 'utf8'));
  passed += r.numPassedTests ?? 0;
  failed += r.numFailedTests ?? 0;
  skipped += (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0);
  // A suite that failed to load has no test results but counts as a failure.
  for (const suite of r.testResults ?? []) if (suite.status === 'failed' && (suite.assertionResults ?? []).length === 0) brokenSuites++;
}
failed += brokenSuites;
// The test runner itself failed (a build broke, a target crashed) without a failing test to show for it.
const runnerStatus = Number(process.argv[2] ?? 0);
if (runnerStatus !== 0 && failed === 0) {
  console.error(`test runner exited with status ${runnerStatus}; counting it as a failure`);
  failed = 1;
}
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(failed > 0 ? 1 : 0);
