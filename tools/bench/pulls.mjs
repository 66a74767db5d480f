#!/usr/bin/env node
// Benchmark: cold pulls of the project's `tiny`, `many` (~20,000 files in 4 gzip layers) and `big` (~250 MiB in 3
// gzip layers) test images from Debian's docker-registry on loopback, three ways in the same run:
//   ctr→berthd      `ctr images pull --plain-http` against berthd (client-side pull: berthd serves content,
//                   Diff.Apply and snapshots);
//   ctr→containerd  the same command against Debian's containerd (private root, state and socket; CRI disabled);
//   berth→berthd    `berth pull --plain-http` (daemon-side, through berthd's Transfer service).
// Runs are interleaved (A B C, C B A, ...). Each pull is checked (ctr images check: complete and unpacked; the
// committed snapshots are exactly the image's chain IDs); after each, the image is removed with `ctr images rm
// --sync` and the content store and snapshotter must be empty (a run fails otherwise). Each daemon's resident
// memory is sampled from /proc/<pid>/status during every pull (VmRSS every 20 ms, and VmHWM after resetting it
// through /proc/<pid>/clear_refs). Prints median seconds [min-max], ratios to containerd and the peak memory during
// the big pull; writes everything as JSON under --out. Not a test: nothing here asserts a time.
// Usage (as root, after a build): node tools/bench/pulls.mjs [--rounds 3] [--dir /var/tmp] [--only tiny,many,big]
//   [--out /var/tmp/berth-bench-results] [--berthd-cpu-prof DIR]
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BERTH, requireDaemons, startBerthd, startContainerd, stopDaemon } from './lib/daemons.mjs';
import { pushLayout, startRegistry } from './lib/registry.mjs';

const repo = new URL('../..', import.meta.url).pathname;
const { cachedImage } = await import(join(repo, 'tools/images/index.mjs'));

const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : def;
};
const ROUNDS = Number(opt('rounds', 3));
const DIR = opt('dir', '/var/tmp');
const ONLY = opt('only', '').split(',').filter(Boolean);
const OUT = opt('out', '/var/tmp/berth-bench-results');
const CPU_PROF = opt('berthd-cpu-prof', '');
const IMAGES = ['tiny', 'many', 'big'].filter((n) => ONLY.length === 0 || ONLY.includes(n));
const NS = 'bench';
if (!Number.isInteger(ROUNDS) || ROUNDS < 1) throw new Error(`--rounds: a positive integer, not ${opt('rounds')}`);
for (const n of ONLY) if (!['tiny', 'many', 'big'].includes(n)) throw new Error(`--only: tiny, many or big, not ${n}`);

/** Runs a command; resolves with its stdout, rejects with its stderr on a non-zero exit. */
function run(cmd, argv, { timeoutMs = 600_000 } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`${cmd} ${argv.join(' ')}: ${signal ?? `exit ${code}`}: ${err.trim()}`));
    });
  });
}
const ctr = (sock, argv) => run('/usr/bin/ctr', ['--address', sock, '-n', NS, ...argv]);

/** The rows of a ctr table as records by header (columns located from the header line). */
function table(stdout) {
  const [header, ...lines] = stdout.replace(/\n$/, '').split('\n');
  if (!header) return [];
  const names = header.trim().split(/\s+/);
  const starts = names.map((n) => header.indexOf(n));
  return lines
    .filter((l) => l.trim() !== '')
    .map((line) => Object.fromEntries(names.map((n, i) => [n, line.slice(starts[i], i + 1 < starts.length ? starts[i + 1] : undefined).trim()])));
}

const status = (pid) => {
  try {
    return readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return '';
  }
};
const kib = (text, field) => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(text)?.[1] ?? 0);

/** Samples a process's VmRSS every 20 ms until stopped; its VmHWM is reset first (clear_refs 5, root only). */
function sampleMemory(pid) {
  let hwmReset = true;
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
  } catch {
    hwmReset = false;
  }
  const before = kib(status(pid), 'VmRSS');
  let peak = before;
  const timer = setInterval(() => {
    peak = Math.max(peak, kib(status(pid), 'VmRSS'));
  }, 20);
  return () => {
    clearInterval(timer);
    const s = status(pid);
    const after = kib(s, 'VmRSS');
    return { beforeKiB: before, peakSampledKiB: Math.max(peak, after), hwmKiB: hwmReset ? kib(s, 'VmHWM') : null, afterKiB: after };
  };
}

const sha256 = (s) => `sha256:${createHash('sha256').update(s).digest('hex')}`;
/** The image's chain IDs (the keys of its committed snapshots), bottom first. */
function chainIds(diffIds) {
  const out = [];
  for (const d of diffIds) out.push(out.length === 0 ? d : sha256(`${out.at(-1)} ${d}`));
  return out;
}

async function contentAndSnapshots(sock) {
  return { content: table(await ctr(sock, ['content', 'ls'])), snapshots: table(await ctr(sock, ['snapshots', 'ls'])) };
}

/** Checks the pulled image: complete and unpacked, and the committed snapshots are exactly its chain. */
async function checkPulled(sock, ref, chain) {
  const rows = table(await ctr(sock, ['images', 'check']));
  const row = rows.find((r) => r.REF === ref);
  const m = /^complete \((\d+)\/(\d+)\)$/.exec(row?.STATUS ?? '');
  if (!row || !m || m[1] !== m[2] || row.UNPACKED !== 'true') throw new Error(`images check: ${JSON.stringify(rows)}`);
  const snaps = table(await ctr(sock, ['snapshots', 'ls']));
  const keys = snaps.map((s) => s.KEY).sort();
  if (snaps.some((s) => s.KIND !== 'Committed') || JSON.stringify(keys) !== JSON.stringify([...chain].sort())) {
    throw new Error(`snapshots: ${JSON.stringify(snaps)}, expected the chain ${JSON.stringify(chain)}`);
  }
  return { status: row.STATUS, snapshots: snaps.length };
}

/** Removes the image and forces a collection; fails unless content and snapshots are then empty. */
async function removeAll(sock, ref) {
  await ctr(sock, ['images', 'rm', '--sync', ref]);
  let left = await contentAndSnapshots(sock);
  if (left.content.length || left.snapshots.length) {
    // one more synchronous collection (a lease removed with --sync), in case the first raced with a lease's end
    await ctr(sock, ['leases', 'create', '--id', 'bench-gc']);
    await ctr(sock, ['leases', 'rm', '--sync', 'bench-gc']);
    left = await contentAndSnapshots(sock);
  }
  if (left.content.length || left.snapshots.length) {
    throw new Error(`not empty after images rm --sync: ${left.content.length} blobs, ${left.snapshots.length} snapshots: ${JSON.stringify(left)}`);
  }
}

// Cleanup: what this process started, by PID, and what is mounted under its temp roots; once, also on a signal.
const temps = [];
const daemons = [];
let registry;
let cleaning;
function mountsUnder(root) {
  const lines = readFileSync('/proc/self/mountinfo', 'utf8').split('\n');
  const points = lines.map((l) => l.split(' ')[4]).filter(Boolean).map((p) => p.replace(/\\([0-7]{3})/g, (_, o) => String.fromCharCode(parseInt(o, 8))));
  return points.filter((p) => p === root || p.startsWith(`${root}/`)).sort((a, b) => b.length - a.length);
}
function cleanup() {
  cleaning ??= (async () => {
    for (const d of daemons) await stopDaemon(d).catch((e) => console.error(`stop ${d.name}: ${e.message}`));
    await registry?.stop().catch((e) => console.error(`stop registry: ${e.message}`));
    for (const t of temps) {
      for (const p of mountsUnder(t)) await run('umount', [p]).catch(() => run('umount', ['-l', p]).catch((e) => console.error(e.message)));
      rmSync(t, { recursive: true, force: true });
    }
  })();
  return cleaning;
}
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    console.error(`\n${sig}: cleaning up`);
    cleanup().finally(() => process.exit(130));
  });
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const fmt = (xs) => `${median(xs).toFixed(2)} [${Math.min(...xs).toFixed(2)}-${Math.max(...xs).toFixed(2)}]`;
const mib = (k) => (k / 1024).toFixed(0);

async function main() {
  requireDaemons();
  if (process.getuid?.() !== 0) throw new Error('run as root (the snapshotters mount overlays; the layers hold files owned by others)');
  const images = {};
  for (const name of IMAGES) {
    console.log(`image ${name}: building (or from the cache)`);
    images[name] = await cachedImage(name);
  }
  const root = mkdtempSync(join(DIR, 'berth-bench-pulls-'));
  temps.push(root);
  registry = await startRegistry(root);
  const refs = {};
  for (const name of IMAGES) refs[name] = await pushLayout(registry, images[name].dir, `bench/${name}`, 'latest');

  const berthd = await startBerthd(join(root, 'berthd'), CPU_PROF ? { nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${CPU_PROF}`] } : {});
  daemons.push(berthd);
  const containerd = await startContainerd(join(root, 'containerd'));
  daemons.push(containerd);
  const ways = [
    { name: 'ctr→berthd', daemon: berthd, pull: (ref) => ctr(berthd.sock, ['images', 'pull', '--plain-http', ref]) },
    { name: 'ctr→containerd', daemon: containerd, pull: (ref) => ctr(containerd.sock, ['images', 'pull', '--plain-http', ref]) },
    { name: 'berth→berthd', daemon: berthd, pull: (ref) => run(BERTH, ['--address', berthd.sock, '-n', NS, 'pull', '-q', '--plain-http', ref]) },
  ];
  for (const d of [berthd, containerd]) {
    const left = await contentAndSnapshots(d.sock);
    if (left.content.length || left.snapshots.length) throw new Error(`${d.name} does not start empty`);
  }

  const results = {};
  for (const name of IMAGES) {
    const image = images[name];
    const manifest = image.manifests[0];
    const chain = chainIds(manifest.layers.map((l) => l.diffId));
    const bytes = manifest.layers.reduce((n, l) => n + l.descriptor.size, 0);
    results[name] = { ref: refs[name], layers: manifest.layers.length, layerBytes: bytes, runs: [] };
    console.log(`${name}: ${manifest.layers.length} layers, ${(bytes / 2 ** 20).toFixed(1)} MiB compressed`);
    for (let round = 0; round < ROUNDS; round++) {
      const order = round % 2 === 0 ? ways : [...ways].reverse();
      for (const way of order) {
        const stopSampling = sampleMemory(way.daemon.child.pid);
        const started = performance.now();
        let seconds;
        let memory;
        try {
          await way.pull(refs[name]);
          seconds = (performance.now() - started) / 1000;
        } finally {
          memory = stopSampling();
        }
        const check = await checkPulled(way.daemon.sock, refs[name], chain);
        await removeAll(way.daemon.sock, refs[name]);
        results[name].runs.push({ way: way.name, round, seconds, memory, check });
        console.log(`  round ${round + 1} ${way.name.padEnd(15)} ${seconds.toFixed(2)} s, RSS ${mib(memory.beforeKiB)} -> peak ${mib(memory.peakSampledKiB)} MiB`);
      }
    }
  }

  const secondsOf = (name, way) => results[name].runs.filter((r) => r.way === way).map((r) => r.seconds);
  const summary = {};
  console.log(`\ncold pull, seconds: median [min-max] of ${ROUNDS} round(s); ratio = median / median of ctr→containerd`);
  console.log(`${'image'.padEnd(6)} ${ways.map((w) => w.name.padEnd(21)).join(' ')} ctr→berthd/cd  berth→berthd/cd`);
  for (const name of IMAGES) {
    const base = median(secondsOf(name, 'ctr→containerd'));
    const ratio = (way) => median(secondsOf(name, way)) / base;
    summary[name] = Object.fromEntries(ways.map((w) => {
      const xs = secondsOf(name, w.name);
      return [w.name, { median: median(xs), min: Math.min(...xs), max: Math.max(...xs), ratioToContainerd: ratio(w.name) }];
    }));
    console.log(`${name.padEnd(6)} ${ways.map((w) => fmt(secondsOf(name, w.name)).padEnd(21)).join(' ')} ${ratio('ctr→berthd').toFixed(2).padEnd(14)} ${ratio('berth→berthd').toFixed(2)}`);
  }
  if (results.big) {
    console.log('\ndaemon memory during the big pull, MiB: RSS before, peak sampled RSS, VmHWM (max over rounds)');
    for (const w of ways) {
      const runs = results.big.runs.filter((r) => r.way === w.name);
      const max = (f) => Math.max(...runs.map((r) => r.memory[f] ?? 0));
      console.log(`  ${w.name.padEnd(15)} before ${mib(max('beforeKiB'))}, peak ${mib(max('peakSampledKiB'))} (+${mib(Math.max(...runs.map((r) => r.memory.peakSampledKiB - r.memory.beforeKiB)))}), VmHWM ${mib(max('hwmKiB'))}`);
    }
  }
  mkdirSync(OUT, { recursive: true });
  const file = join(OUT, `pulls-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, `${JSON.stringify({ date: new Date().toISOString(), rounds: ROUNDS, dir: DIR, loadavg: (await import('node:os')).loadavg(), summary, results }, null, 2)}\n`);
  console.log(`\nwrote ${file}`);
}

try {
  await main();
} finally {
  await cleanup();
}
