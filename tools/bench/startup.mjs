#!/usr/bin/env node
// Start-up, side by side in one run (issue 15; docs/performance.md): `berth version` against berthd and `ctr
// version` against containerd, each daemon's start to its first answered Version (empty, and again with data:
// 100 namespaces holding 1,000 blobs), and each daemon's RSS right after start. `node -e 0` is measured too, as
// the floor every Node program pays. Medians of --runs (default 7), alternating which tool goes first.
//
//   node tools/bench/startup.mjs [--runs N]
import { spawn } from 'node:child_process';
import { mkdtemp, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { accepts, BERTH, ctr, requireDaemons, rssKiB, startBerthd, startContainerd, stopDaemon } from './lib/daemons.mjs';

const runsArg = process.argv.indexOf('--runs');
const RUNS = runsArg > 0 ? Number(process.argv[runsArg + 1]) : 7;
requireDaemons();
const { BerthClient } = await import(new URL('../../packages/client/dist/index.js', import.meta.url).href);

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const ms = (ns) => Number(ns) / 1e6;

/** Wall time of one command to its exit, in ms; fails on a non-zero exit. */
function timed(cmd, args) {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(ms(process.hrtime.bigint() - t0)) : reject(new Error(`${cmd} ${args.join(' ')}: exit ${code}: ${err}`))));
  });
}

/** ms from spawn to the first answered Version: connect polled every 2 ms, then one Version call on a fresh channel. */
async function readiness(start, dir) {
  const t0 = process.hrtime.bigint();
  const d = await start(dir, { wait: false });
  for (;;) {
    if (d.child.exitCode !== null) throw new Error(`${d.name} exited with ${d.child.exitCode}`);
    if (await accepts(d.sock)) {
      const client = new BerthClient({ address: d.sock, timeoutMs: 2000 });
      try {
        await client.version.Version({});
        const ready = ms(process.hrtime.bigint() - t0);
        return { d, ready, rss: rssKiB(d.child.pid) / 1024 };
      } catch {
        // Listening but not serving yet.
      } finally {
        client.close();
      }
    }
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** 100 namespaces with 10 small blobs each, written with ctr (the same data into either daemon). */
async function fill(sock) {
  const jobs = [];
  for (let n = 0; n < 100; n++) for (let b = 0; b < 10; b++) jobs.push([n, b]);
  const worker = async () => {
    for (let job = jobs.shift(); job; job = jobs.shift()) {
      const [n, b] = job;
      const file = join(tmpdir(), `berth-bench-startup-${process.pid}-${n}-${b}`);
      await writeFile(file, `blob ${n}/${b} ${'x'.repeat(1024)}`);
      await ctr(sock, ['-n', `ns${n}`, 'content', 'ingest', `ref-${n}-${b}`], { stdinFile: file });
      await unlink(file);
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
}

const dir = await mkdtemp(join(tmpdir(), 'berth-bench-startup-'));
const results = { node: [], ctrVersion: [], berthVersion: [], containerdReady: [], berthdReady: [], containerdRss: [], berthdRss: [], containerdRestart: [], berthdRestart: [] };
const live = [];
try {
  // Empty daemons: start-up and RSS, fresh dirs each run.
  for (let i = 0; i < RUNS; i++) {
    const order = i % 2 === 0 ? ['berthd', 'containerd'] : ['containerd', 'berthd'];
    for (const name of order) {
      const r = await readiness(name === 'berthd' ? startBerthd : startContainerd, join(dir, `empty-${name}-${i}`));
      live.push(r.d);
      results[`${name}Ready`].push(r.ready);
      results[`${name}Rss`].push(r.rss);
    }
    // The CLIs against the daemons just started (each against its own).
    const b = live.find((d) => d.name === 'berthd');
    const c = live.find((d) => d.name === 'containerd');
    results.node.push(await timed(process.execPath, ['-e', '0']));
    for (const tool of i % 2 === 0 ? ['berth', 'ctr'] : ['ctr', 'berth']) {
      if (tool === 'berth') results.berthVersion.push(await timed(BERTH, ['--address', b.sock, 'version']));
      else results.ctrVersion.push(await timed('/usr/bin/ctr', ['--address', c.sock, 'version']));
    }
    for (const d of live.splice(0)) await stopDaemon(d);
  }
  // With data: fill once, then restart on the same dirs.
  for (const name of ['berthd', 'containerd']) {
    const start = name === 'berthd' ? startBerthd : startContainerd;
    const d = await start(join(dir, `data-${name}`));
    live.push(d);
    await fill(d.sock);
    await stopDaemon(live.pop());
    for (let i = 0; i < RUNS; i++) {
      const r = await readiness(start, join(dir, `data-${name}`));
      live.push(r.d);
      results[`${name}Restart`].push(r.ready);
      await stopDaemon(live.pop());
    }
  }
} finally {
  for (const d of live) await stopDaemon(d);
  await rm(dir, { recursive: true, force: true });
}

const m = Object.fromEntries(Object.entries(results).map(([k, v]) => [k, median(v)]));
const row = (what, c, b, unit = 'ms') => console.log(`${what.padEnd(44)} ${`${c.toFixed(1)} ${unit}`.padStart(10)} ${`${b.toFixed(1)} ${unit}`.padStart(10)} ${(b / c).toFixed(2).padStart(7)}`);
console.log(`start-up, medians of ${RUNS} (node -e 0: ${m.node.toFixed(1)} ms)`);
console.log(`${'what'.padEnd(44)} ${'containerd'.padStart(10)} ${'berth'.padStart(10)} ${'ratio'.padStart(7)}`);
row('version against a running daemon (ctr/berth)', m.ctrVersion, m.berthVersion);
row('daemon start to first answered Version', m.containerdReady, m.berthdReady);
row('  same, 100 namespaces and 1,000 blobs', m.containerdRestart, m.berthdRestart);
row('daemon RSS right after start', m.containerdRss, m.berthdRss, 'MiB');
console.log(`targets: berth version <= 1.5 x (node -e 0 + one ctr version) = ${(1.5 * (m.node + m.ctrVersion)).toFixed(1)} ms; berthd ready <= node -e 0 + 2 x containerd = ${(m.node + 2 * m.containerdReady).toFixed(1)} ms`);
