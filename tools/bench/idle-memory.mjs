#!/usr/bin/env node
// Benchmark: resident memory of berthd and of a private containerd 1.6, side by side in one run, through the same
// ctr commands: right after start, after a 200 MiB content ingest and read, after a burst of small calls
// (namespaces, leases), and after idling. Prints MiB (VmRSS from /proc) and berthd/containerd ratios, medians of
// --rounds runs (each round starts both daemons afresh).
// Usage: node tools/bench/idle-memory.mjs [--rounds 3] [--idle-seconds 10] [--blob-mib 200]
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes, createHash } from 'node:crypto';
import { once } from 'node:events';
import { ctr, requireDaemons, rssKiB, startBerthd, startContainerd, stopDaemon } from './lib/daemons.mjs';

const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : def;
};
const ROUNDS = opt('rounds', 3);
const IDLE_MS = opt('idle-seconds', 10) * 1000;
const BLOB_MIB = opt('blob-mib', 200);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const mib = (pid) => rssKiB(pid) / 1024;
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function scenario(d, blob, digest) {
  const out = {};
  await sleep(3000);
  out['idle after start'] = mib(d.child.pid);
  // The blob first: ctr ingests without a lease, so a collection triggered by many mutations could take it.
  await ctr(d.sock, ['content', 'ingest', 'blob'], { stdinFile: blob });
  await ctr(d.sock, ['content', 'get', digest], { stdoutFile: '/dev/null' });
  out[`${BLOB_MIB} MiB ingest + get`] = mib(d.child.pid);
  for (let i = 0; i < 200; i++) await ctr(d.sock, ['namespaces', 'create', `ns-${i}`]);
  for (let i = 0; i < 100; i++) await ctr(d.sock, ['leases', 'create', '--id', `lease-${i}`]);
  out['+ 300 small calls'] = mib(d.child.pid);
  await sleep(IDLE_MS);
  out[`idle ${IDLE_MS / 1000} s`] = mib(d.child.pid);
  return out;
}

async function main() {
  requireDaemons();
  const dir = await mkdtemp(join(tmpdir(), 'berth-bench-mem-'));
  const blob = join(dir, 'blob');
  try {
    const ws = createWriteStream(blob);
    const hash = createHash('sha256');
    for (let i = 0; i < BLOB_MIB; i++) {
      const chunk = randomBytes(1 << 20);
      hash.update(chunk);
      if (!ws.write(chunk)) await once(ws, 'drain');
    }
    ws.end();
    await once(ws, 'finish');
    const digest = `sha256:${hash.digest('hex')}`;
    const results = { berthd: [], containerd: [] };
    for (let round = 0; round < ROUNDS; round++) {
      // Interleaved (A, B, B, A, ...) so that drift of the machine cancels out.
      const order = round % 2 === 0 ? [startBerthd, startContainerd] : [startContainerd, startBerthd];
      for (const start of order) {
        const d = await start(join(dir, `${round}-${start.name}`));
        try {
          results[d.name].push(await scenario(d, blob, digest));
        } finally {
          await stopDaemon(d);
        }
      }
    }
    const phases = Object.keys(results.berthd[0]);
    console.log(`resident memory (MiB, median of ${ROUNDS} rounds)`);
    console.log(`${'phase'.padEnd(24)} ${'berthd'.padStart(8)} ${'containerd'.padStart(11)} ${'ratio'.padStart(6)}`);
    for (const p of phases) {
      const b = median(results.berthd.map((r) => r[p]));
      const c = median(results.containerd.map((r) => r[p]));
      console.log(`${p.padEnd(24)} ${b.toFixed(1).padStart(8)} ${c.toFixed(1).padStart(11)} ${(b / c).toFixed(2).padStart(6)}`);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err.message);
  process.exit(1);
});
