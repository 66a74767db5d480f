#!/usr/bin/env node
// Benchmark: the overlay snapshotter in-process (the built package), on a temp dir of the given filesystem:
// prepare + commit of N snapshots (one after another, and 16 at a time), stat and walk of all of them, removal;
// a chain of L layers: Mounts, and mountAll + unmount of its overlay (options longer than a page: compacted and
// mounted through /bin/mount from the snapshots dir) against one of 16 layers (mount(2) through FFI); Usage of
// an active snapshot of 10,000 files; the longest event-loop stall seen. For the choice of the record store, the
// cost of the alternative: rewriting a JSON file of N records atomically (write, fsync, rename, fsync the dir).
// Each row also prints the longest event-loop stall of its section (the bench's own synchronous setup counts too:
// the files it writes, mount(2)/umount2 through FFI). No containerd column: the snapshotter is measured in-process,
// and a comparison through ctr needs the Snapshots gRPC service (services-snapshots).
// Run as root after a build: node tools/bench/snapshotter.mjs [--count 2000] [--layers 128] [--dir /var/tmp]
import { mkdirSync, mkdtempSync, openSync, closeSync, fsyncSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';

const args = process.argv.slice(2);
const opt = (name, dflt) => (args.includes(`--${name}`) ? args[args.indexOf(`--${name}`) + 1] : dflt);
const COUNT = Number(opt('count', 2000));
const LAYERS = Number(opt('layers', 128));
const BASE = opt('dir', tmpdir());
const repo = new URL('../..', import.meta.url).pathname;
const { OverlaySnapshotter, probeOverlay } = await import(join(repo, 'packages/plugins/snapshotter-overlay/dist/index.js'));
const { createLogger } = await import(join(repo, 'packages/core/dist/index.js'));
const sys = await import(join(repo, 'packages/sys/dist/index.js'));

const log = createLogger({ level: 'error' });
const ctx = { namespace: 'bench' };
const dir = mkdtempSync(join(BASE, 'berth-bench-snapshotter-'));
const root = join(dir, 'root');
mkdirSync(root);
const rows = [];
// Each row also shows the longest event-loop stall since the row before (what the section held the loop for).
let sectionStall = 0;
const row = (what, value) => {
  rows.push([what, value]);
  console.log(`${what.padEnd(64)} ${value.padEnd(40)} stall ${sectionStall.toFixed(0)} ms`);
  sectionStall = 0;
};
const ms = (x) => `${x.toFixed(x < 10 ? 2 : 0)} ms`;
const stats = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return `median ${ms(s[Math.floor(s.length / 2)])}, p99 ${ms(s[Math.floor(s.length * 0.99)])}`;
};
const upper = (mounts) => (mounts[0].type === 'bind' ? mounts[0].source : mounts[0].options.find((o) => o.startsWith('upperdir=')).slice(9));

let stall = 0;
let last = performance.now();
const probe = setInterval(() => {
  const now = performance.now();
  stall = Math.max(stall, now - last);
  sectionStall = Math.max(sectionStall, now - last);
  last = now;
}, 2);

try {
  let t = performance.now();
  const found = await probeOverlay(root, [], log);
  if (!found.ok) throw new Error(`overlay probe failed: ${found.reason}`);
  row('probe at init (mount, use, unmount an overlay)', ms(performance.now() - t));
  const s = await OverlaySnapshotter.open({ root, log, mountOptions: found.options });

  // N snapshots, one after another.
  const prep = [];
  const comm = [];
  t = performance.now();
  for (let i = 0; i < COUNT; i++) {
    let a = performance.now();
    const m = await s.prepare(ctx, `k${i}`, '', { labels: { 'containerd.io/gc.root': 'x', n: String(i % 10) } });
    prep.push(performance.now() - a);
    writeFileSync(join(upper(m), 'f'), String(i));
    a = performance.now();
    // The committed snapshot has the labels given to Commit, not those of the active one (as containerd).
    await s.commit(ctx, `c${i}`, `k${i}`, { labels: { 'containerd.io/gc.root': 'x', n: String(i % 10) } });
    comm.push(performance.now() - a);
  }
  const seq = performance.now() - t;
  row(`${COUNT} × (prepare + write a file + commit), sequential`, `${ms(seq)} (${(COUNT / (seq / 1000)).toFixed(0)} snapshots/s)`);
  row('  prepare', stats(prep));
  row('  commit', stats(comm));

  // N more, 16 at a time (LMDB batches the concurrent commits).
  t = performance.now();
  for (let i = 0; i < COUNT; i += 16) {
    await Promise.all(
      Array.from({ length: Math.min(16, COUNT - i) }, async (_, j) => {
        const m = await s.prepare(ctx, `p${i + j}`, '');
        writeFileSync(join(upper(m), 'f'), 'x');
        await s.commit(ctx, `q${i + j}`, `p${i + j}`);
      }),
    );
  }
  const par = performance.now() - t;
  row(`${COUNT} × (prepare + write + commit), 16 concurrent`, `${ms(par)} (${(COUNT / (par / 1000)).toFixed(0)} snapshots/s)`);

  t = performance.now();
  for (let i = 0; i < COUNT; i++) await s.stat(ctx, `c${i}`);
  row(`stat of ${COUNT}`, `${(((performance.now() - t) / COUNT) * 1000).toFixed(1)} µs each`);
  t = performance.now();
  let n = 0;
  for await (const _ of s.walk(ctx)) n++;
  row(`walk of ${n}`, ms(performance.now() - t));
  t = performance.now();
  n = 0;
  for await (const _ of s.walk(ctx, ['labels.n==3,kind==committed'])) n++;
  row(`walk with a filter (${n} match)`, ms(performance.now() - t));

  // A chain of LAYERS layers, and one of 16.
  const chain = async (prefix, layers) => {
    let parent = '';
    for (let i = 0; i < layers; i++) {
      const m = await s.prepare(ctx, `${prefix}-k${i}`, parent);
      writeFileSync(join(upper(m), `layer-${i}`), String(i));
      await s.commit(ctx, `${prefix}-c${i}`, `${prefix}-k${i}`);
      parent = `${prefix}-c${i}`;
    }
    return parent;
  };
  const top = await chain('deep', LAYERS);
  const small = await chain('small', 16);
  await s.prepare(ctx, 'deep-top', top);
  await s.prepare(ctx, 'small-top', small);
  t = performance.now();
  for (let i = 0; i < 100; i++) await s.mounts(ctx, 'deep-top');
  row(`Mounts of a snapshot on ${LAYERS} layers`, `${(((performance.now() - t) / 100) * 1000).toFixed(0)} µs`);
  const target = join(dir, 'mnt');
  mkdirSync(target);
  for (const [key, layers] of [['deep-top', LAYERS], ['small-top', 16]]) {
    const mounts = await s.mounts(ctx, key);
    const xs = [];
    for (let i = 0; i < 20; i++) {
      const a = performance.now();
      await sys.mountAll(mounts, target);
      await sys.unmountAll(target);
      xs.push(performance.now() - a);
    }
    row(`mountAll + unmount, ${layers} layers (options ${mounts[0].options.join(',').length} bytes)`, stats(xs));
  }

  // Usage of an active snapshot of 10,000 files.
  const big = upper(await s.prepare(ctx, 'big', ''));
  for (let d = 0; d < 10; d++) {
    mkdirSync(join(big, `d${d}`));
    for (let i = 0; i < 1000; i++) writeFileSync(join(big, `d${d}`, `f${i}`), 'x'.repeat(100));
  }
  t = performance.now();
  const u = await s.usage(ctx, 'big');
  row(`Usage of an active snapshot of ${u.inodes} inodes`, ms(performance.now() - t));
  t = performance.now();
  await s.commit(ctx, 'big-c', 'big');
  row('Commit of it (computes and caches the usage)', ms(performance.now() - t));

  t = performance.now();
  for (let i = 0; i < COUNT; i++) await s.remove(ctx, `c${i}`);
  row(`remove of ${COUNT} (record, then directory)`, `${ms(performance.now() - t)}`);
  t = performance.now();
  await s.cleanup(ctx);
  row('cleanup (nothing to remove)', ms(performance.now() - t));
  await s.close();
  clearInterval(probe);
  row('longest event-loop stall seen during all of the above', ms(stall));

  // The alternative store: one JSON file of COUNT records, rewritten atomically on every change.
  const records = Object.fromEntries(
    Array.from({ length: COUNT }, (_, i) => [`default/${i}/sha256:${'a'.repeat(64)}`, { id: i, kind: 'committed', parent: `default/${i - 1}/sha256:${'b'.repeat(64)}`, labels: { 'containerd.io/gc.root': new Date().toISOString() }, createdAt: Date.now(), updatedAt: Date.now(), size: 4096, inodes: 2 }]),
  );
  const jsonDir = join(dir, 'json');
  mkdirSync(jsonDir);
  const xs = [];
  for (let i = 0; i < 50; i++) {
    const a = performance.now();
    const tmp = join(jsonDir, 'records.json.tmp');
    writeFileSync(tmp, JSON.stringify(records));
    const fd = openSync(tmp, 'r+');
    fsyncSync(fd);
    closeSync(fd);
    renameSync(tmp, join(jsonDir, 'records.json'));
    const dfd = openSync(jsonDir, 'r');
    fsyncSync(dfd);
    closeSync(dfd);
    xs.push(performance.now() - a);
  }
  const sorted = xs.sort((a, b) => a - b);
  const med = sorted[25];
  row(`alternative: atomic rewrite of a JSON file of ${COUNT} records`, `${stats(xs)} (synchronous: the event loop waits)`);
  row(`  so ${COUNT} prepares + ${COUNT} commits at that size would take`, `about ${ms(med * 2 * COUNT)}`);
} finally {
  clearInterval(probe);
  await sys.unmountAll(join(dir, 'mnt'), sys.MNT_DETACH).catch(() => undefined);
  rmSync(dir, { recursive: true, force: true });
}
