#!/usr/bin/env node
// Runs the reliability suite, longer or narrower than CI does: flags become the CHAOS_* settings of src/budget.ts.
//   node tools/chaos/run.mjs                          # what CI runs
//   node tools/chaos/run.mjs --cycles 200             # 200 SIGKILL cycles (allowing 20 s each)
//   node tools/chaos/run.mjs --phase b,d --seed 123456
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(new URL('.', import.meta.url));
const flags = {
  '--cycles': 'CHAOS_CYCLES',
  '--kill-seconds': 'CHAOS_KILL_SECONDS',
  '--seed': 'CHAOS_SEED',
  '--stall-ms': 'CHAOS_STALL_MS',
  '--stuck-ms': 'CHAOS_STUCK_MS',
  '--burst': 'CHAOS_BURST_TOTAL',
  '--burst-concurrency': 'CHAOS_BURST_CONCURRENCY',
  '--tmpfs-mib': 'CHAOS_TMPFS_MIB',
};
const env = { ...process.env };
const files = [];
const args = process.argv.slice(2);
for (let i = 0; i < args.length; i++) {
  const arg = args[i];
  if (arg === '--help' || arg === '-h') {
    console.log(`usage: run.mjs [${Object.keys(flags).join(' N] [')} N] [--phase a,b,...] [--debug]`);
    process.exit(0);
  } else if (arg === '--debug') env.CHAOS_DEBUG = '1';
  else if (arg === '--phase') {
    const wanted = (args[++i] ?? '').split(',');
    const tests = readdirSync(`${here}test`).filter((f) => f.endsWith('.test.ts'));
    for (const p of wanted) files.push(...tests.filter((f) => f.startsWith(`${p}-`)).map((f) => `test/${f}`));
  } else if (flags[arg] && args[i + 1] !== undefined) env[flags[arg]] = args[++i];
  else {
    console.error(`run.mjs: unknown argument ${arg} (try --help)`);
    process.exit(2);
  }
}
// --cycles alone means "this many": the time bound then only stops a loop that has stopped progressing.
if (env.CHAOS_CYCLES && !args.includes('--kill-seconds')) env.CHAOS_KILL_SECONDS = String(Number(env.CHAOS_CYCLES) * 20);
// A run longer than CI's must not trip the per-test timeouts meant to catch a stuck phase.
const killSeconds = Number(env.CHAOS_KILL_SECONDS ?? 45);
const timeoutMs = String(Math.max(120_000, (killSeconds + 120) * 1000));
const result = spawnSync('npx', ['vitest', 'run', '--testTimeout', timeoutMs, '--hookTimeout', timeoutMs, ...files], { cwd: here, env, stdio: 'inherit' });
process.exit(result.status ?? 1);
