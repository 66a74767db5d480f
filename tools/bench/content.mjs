#!/usr/bin/env node
// Benchmark: ingest and read back a random blob through `ctr content ingest` / `ctr content get`, against berthd
// and against Debian's containerd, both started here on temp dirs, in the same run. Prints MiB/s for each, the
// ratio berthd/containerd, and each daemon's peak RSS growth during the transfers (sampled from /proc).
// Usage: node tools/bench/content.mjs [--size-mib 512] [--rounds 2]
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { ctr, requireDaemons, rssKiB, startBerthd, startContainerd, stopDaemon } from './lib/daemons.mjs';

const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : def;
};
const SIZE_MIB = opt('size-mib', 512);
const ROUNDS = opt('rounds', 2);

async function timed(daemon, fn) {
  const base = rssKiB(daemon.child.pid);
  let peak = base;
  const timer = setInterval(() => (peak = Math.max(peak, rssKiB(daemon.child.pid))), 50);
  const start = performance.now();
  await fn();
  const seconds = (performance.now() - start) / 1000;
  clearInterval(timer);
  return { seconds, rssGrowthMiB: (peak - base) / 1024 };
}

async function main() {
  requireDaemons();
  const dir = await mkdtemp(join(tmpdir(), 'berth-bench-'));
  const blob = join(dir, 'blob');
  const out = join(dir, 'out');
  const daemons = [];
  try {
    const ws = createWriteStream(blob);
    for (let i = 0; i < SIZE_MIB; i++) if (!ws.write(randomBytes(1 << 20))) await once(ws, 'drain');
    ws.end();
    await once(ws, 'finish');
    const { createHash } = await import('node:crypto');
    const hash = createHash('sha256');
    for await (const chunk of createReadStream(blob)) hash.update(chunk);
    const digest = `sha256:${hash.digest('hex')}`;

    daemons.push(await startBerthd(join(dir, 'b')));
    daemons.push(await startContainerd(join(dir, 'c')));
    const results = {};
    for (const d of daemons) results[d.name] = { ingest: [], get: [] };
    for (let round = 0; round < ROUNDS; round++) {
      for (const d of daemons) {
        const ingest = await timed(d, () => ctr(d.sock, ['content', 'ingest', `bench-${round}`], { stdinFile: blob }));
        const get = await timed(d, () => ctr(d.sock, ['content', 'get', digest], { stdoutFile: out }));
        results[d.name].ingest.push(ingest);
        results[d.name].get.push(get);
        await ctr(d.sock, ['content', 'rm', digest]);
      }
    }
    const best = (list) => list.reduce((a, b) => (b.seconds < a.seconds ? b : a));
    const rate = (r) => SIZE_MIB / r.seconds;
    console.log(`content ingest/get of a ${SIZE_MIB} MiB random blob, best of ${ROUNDS} rounds (MiB/s; peak RSS growth MiB)`);
    for (const op of ['ingest', 'get']) {
      const b = best(results.berthd[op]);
      const c = best(results.containerd[op]);
      const worstRss = (n) => Math.max(...results[n][op].map((r) => r.rssGrowthMiB));
      console.log(
        `${op.padEnd(7)} berthd ${rate(b).toFixed(1).padStart(7)}  containerd ${rate(c).toFixed(1).padStart(7)}  ratio ${(rate(b) / rate(c)).toFixed(2)}` +
          `   rss berthd +${worstRss('berthd').toFixed(1)}  containerd +${worstRss('containerd').toFixed(1)}`,
      );
    }
  } finally {
    for (const d of daemons) await stopDaemon(d);
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err.message);
  process.exit(1);
});
