#!/usr/bin/env node
// Benchmark: Diff.Apply of a gzip layer of 20,000 small files and of a 200 MiB gzip layer, onto a bind mount on a
// tmpfs and on the root disk, by berthd and by Debian's containerd, both started here in the same run. The layer is
// ingested into each daemon with ctr; Apply is called with berth's own client over each daemon's socket. Rounds are
// interleaved; prints median seconds [min-max] and the ratio berthd/containerd.
// Usage: node tools/bench/apply.mjs [--rounds 3] [--small-files 20000] [--big-mib 200] [--only tmpfs|disk]
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { join } from 'node:path';
import { ctr, requireDaemons, startBerthd, startContainerd, stopDaemon } from './lib/daemons.mjs';

const repo = new URL('../..', import.meta.url).pathname;
const { BerthClient } = await import(join(repo, 'packages/client/dist/index.js'));

const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : def;
};
const ROUNDS = Number(opt('rounds', 3));
const SMALL_FILES = Number(opt('small-files', 20000));
const BIG_MIB = Number(opt('big-mib', 200));
const ONLY = opt('only', '');

const run = (cmd, argv, options = {}) => {
  const r = spawnSync(cmd, argv, { maxBuffer: 1 << 30, ...options });
  if (r.status !== 0) throw new Error(`${cmd} ${argv.join(' ')}: ${r.stderr}`);
  return r.stdout;
};

/** Bytes of real binaries from /usr (they compress about as image layers do), `n` at a time. */
function* usrBytes() {
  const stack = ['/usr/lib/x86_64-linux-gnu', '/usr/bin', '/usr/lib'];
  while (stack.length) {
    const dir = stack.pop();
    let names;
    try {
      names = readdirSync(dir, { withFileTypes: true });
    } catch {
      continue;
    }
    for (const e of names) {
      const p = join(dir, e.name);
      if (e.isDirectory()) stack.push(p);
      else if (e.isFile()) {
        try {
          if (statSync(p).size > 4096) yield readFileSync(p);
        } catch {
          // unreadable
        }
      }
    }
  }
}

function makeLayers(dir) {
  const src = usrBytes();
  let pool = Buffer.alloc(0);
  const take = (n) => {
    while (pool.length < n) {
      const next = src.next();
      if (next.done) throw new Error('not enough bytes under /usr');
      pool = Buffer.concat([pool, next.value]);
    }
    const out = pool.subarray(0, n);
    pool = pool.subarray(n);
    return Buffer.from(out);
  };
  const small = join(dir, 'small');
  for (let i = 0; i < SMALL_FILES; i++) {
    const d = join(small, `d${i % 100}`);
    if (i < 100) mkdirSync(d, { recursive: true });
    writeFileSync(join(d, `f${i}`), take(1024 + ((i * 7919) % 3072)));
  }
  const big = join(dir, 'big');
  mkdirSync(big);
  for (let i = 0; i < BIG_MIB / 5; i++) writeFileSync(join(big, `blob${i}`), take(5 << 20));
  const layers = {};
  for (const [name, from] of [['small', small], ['big', big]]) {
    const file = join(dir, `${name}.tar.gz`);
    const tar = run('tar', ['-c', '--format=posix', '-C', from, '.']);
    writeFileSync(file, run('pigz', ['-6', '-n', '-c'], { input: tar }));
    const blob = readFileSync(file);
    layers[name] = {
      file,
      diffId: `sha256:${createHash('sha256').update(tar).digest('hex')}`,
      desc: { media_type: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: `sha256:${createHash('sha256').update(blob).digest('hex')}`, size: blob.length },
    };
    rmSync(from, { recursive: true, force: true });
  }
  return layers;
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const fmt = (xs) => `${median(xs).toFixed(2)} [${Math.min(...xs).toFixed(2)}-${Math.max(...xs).toFixed(2)}]`;

async function main() {
  requireDaemons();
  if (process.getuid() !== 0) throw new Error('run as root (the layers hold files owned by others; a tmpfs is mounted)');
  const dir = await mkdtemp(join('/var/tmp', 'berth-bench-apply-'));
  const tmpfs = join(dir, 'tmpfs');
  mkdirSync(tmpfs);
  let mounted = false;
  const daemons = [];
  const clients = [];
  try {
    console.log(`making layers: ${SMALL_FILES} small files, ${BIG_MIB} MiB`);
    const layers = makeLayers(dir);
    for (const [name, l] of Object.entries(layers)) console.log(`  ${name}: ${(l.desc.size / 2 ** 20).toFixed(1)} MiB gzip`);
    run('mount', ['-t', 'tmpfs', '-o', 'size=2g,mode=0755', 'tmpfs', tmpfs]);
    mounted = true;
    // Each daemon's root on the root disk (containerd's tmpmounts and berth's live there).
    daemons.push(await startBerthd(join(dir, 'berthd')), await startContainerd(join(dir, 'containerd')));
    for (const d of daemons) {
      for (const l of Object.values(layers)) {
        await ctr(d.sock, ['content', 'ingest', '--expected-digest', l.desc.digest, '--expected-size', String(l.desc.size), `bench-${l.desc.digest}`], { stdinFile: l.file });
      }
      clients.push(new BerthClient({ address: d.sock, namespace: 'bench' }));
    }
    const places = { tmpfs, disk: join(dir, 'disk') };
    mkdirSync(places.disk);
    const times = {};
    for (let round = 0; round < ROUNDS; round++) {
      for (const [place, base] of Object.entries(places)) {
        if (ONLY && ONLY !== place) continue;
        for (const [name, l] of Object.entries(layers)) {
          // Alternate which daemon goes first.
          const order = round % 2 === 0 ? [0, 1] : [1, 0];
          for (const i of order) {
            const target = join(base, `${daemons[i].name}-${name}`);
            rmSync(target, { recursive: true, force: true });
            mkdirSync(target);
            run('sync', []);
            const start = performance.now();
            const res = await clients[i].diff.Apply({ diff: l.desc, mounts: [{ type: 'bind', source: target, options: ['rbind', 'rw'] }] });
            const seconds = (performance.now() - start) / 1000;
            if (res.applied?.digest !== l.diffId) throw new Error(`${daemons[i].name}: diff ID ${res.applied?.digest}, expected ${l.diffId}`);
            ((times[`${place} ${name}`] ??= {})[daemons[i].name] ??= []).push(seconds);
            rmSync(target, { recursive: true, force: true });
          }
        }
      }
    }
    console.log(`\nDiff.Apply, seconds, median [min-max] of ${ROUNDS} rounds; ratio berthd/containerd of the medians`);
    console.log('case           berthd              containerd          ratio');
    for (const [key, t] of Object.entries(times)) {
      console.log(`${key.padEnd(14)} ${fmt(t.berthd).padEnd(19)} ${fmt(t.containerd).padEnd(19)} ${(median(t.berthd) / median(t.containerd)).toFixed(2)}`);
    }
  } finally {
    for (const c of clients) c.close();
    for (const d of daemons) await stopDaemon(d);
    if (mounted) run('umount', [tmpfs]);
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
