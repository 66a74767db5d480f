#!/usr/bin/env node
// Running containers (issue 11's Measure; docs/performance.md), berthd against a private containerd in the same
// run, through the same ctr commands, with the project's `tiny` image (busybox-static) imported into each:
// - `ctr run --rm IMAGE id /bin/true`, --runs times (default 20) per daemon, interleaved: median ms [min-max];
// - --concurrent containers (default 20) started at once with `ctr run -d IMAGE id sleep 600` (wall time until
//   every ctr returned), then torn down at once (`ctr tasks kill -s SIGKILL`, `ctr tasks rm`, `ctr containers
//   rm` per container, all in parallel), --rounds times (default 3);
// - the floor: `runc run` of /bin/true alone on a prepared bundle (the image's layer unpacked, `runc spec`);
// - berthd's memory: RSS idle after start, the peak sampled every 20 ms while the concurrent containers run, VmHWM.
// Ratios are berthd/containerd (targets: within 10% on latency, no slower on the concurrent start and teardown).
// Needs root. `--berthd-cpu-prof DIR` writes berthd's --cpu-prof profile there when it stops; `--only berthd` or
// `--only containerd` measures one daemon.
//
//   node tools/bench/run.mjs [--runs 20] [--concurrent 20] [--rounds 3] [--berthd-cpu-prof DIR] [--only NAME]
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requireDaemons, rssKiB, startBerthd, startContainerd, stopDaemon } from './lib/daemons.mjs';

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : fallback;
};
const RUNS = Number(arg('runs', '20'));
const CONCURRENT = Number(arg('concurrent', '20'));
const ROUNDS = Number(arg('rounds', '3'));
const CPU_PROF = arg('berthd-cpu-prof', '');
const ONLY = arg('only', '');
if (process.getuid?.() !== 0) throw new Error('run.mjs runs containers: run it as root');
requireDaemons();
const repo = new URL('../..', import.meta.url).pathname;
const { buildImage } = await import(join(repo, 'tools/images/index.mjs'));

const NS = 'bench';
const IMAGE = 'docker.io/berth/bench-tiny:latest';
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const ms = (ns) => Number(ns) / 1e6;
const fmt = (xs) => (xs.length === 0 ? '-' : `${median(xs).toFixed(1)} [${Math.min(...xs).toFixed(1)}-${Math.max(...xs).toFixed(1)}]`);

/** Runs a command; resolves with its wall ms, rejects on a non-zero exit (with its stderr). */
function timed(cmd, args, { allowFail = false } = {}) {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('close', (code) => {
      const t = ms(process.hrtime.bigint() - t0);
      if (code !== 0 && !allowFail) reject(new Error(`${cmd} ${args.join(' ')}: exit ${code}: ${err}`));
      else resolve({ t, out, code });
    });
  });
}
const ctr = (d, args, options) => timed('/usr/bin/ctr', ['--address', d.sock, '-n', NS, ...args], options);

/** Kills and removes every task and container left in the bench namespace. */
async function clean(d) {
  const tasks = (await ctr(d, ['tasks', 'ls', '-q'], { allowFail: true })).out.split('\n').filter(Boolean);
  await Promise.all(tasks.map((id) => ctr(d, ['tasks', 'rm', '-f', id], { allowFail: true })));
  const containers = (await ctr(d, ['containers', 'ls', '-q'], { allowFail: true })).out.split('\n').filter(Boolean);
  await Promise.all(containers.map((id) => ctr(d, ['containers', 'rm', id], { allowFail: true })));
}

/** Mount points under `dir` (deepest first), from this process's mount table. */
const mountsUnder = (dir) =>
  readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((m) => m && m.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);

const dir = await mkdtemp(join(tmpdir(), 'berth-bench-run-'));
const live = [];
const results = {};
try {
  // The image: the tiny layout as an archive for `ctr images import`, and its layer unpacked for runc's bundle.
  const image = await buildImage('tiny', join(dir, 'tiny'));
  await timed('tar', ['-C', join(dir, 'tiny'), '-cf', join(dir, 'tiny.tar'), '.']);
  const bundle = join(dir, 'bundle');
  await mkdir(join(bundle, 'rootfs'), { recursive: true });
  const layer = image.manifests[0].layers[0].descriptor.digest.replace('sha256:', '');
  await timed('tar', ['-xzf', join(dir, 'tiny', 'blobs', 'sha256', layer), '-C', join(bundle, 'rootfs')]);
  await timed('/usr/sbin/runc', ['spec', '--bundle', bundle]).catch(() => timed('runc', ['spec', '--bundle', bundle]));
  const spec = JSON.parse(await readFile(join(bundle, 'config.json'), 'utf8'));
  spec.process.terminal = false;
  spec.process.args = ['/bin/true'];
  await writeFile(join(bundle, 'config.json'), JSON.stringify(spec));

  // The floor: runc alone.
  const runcRoot = join(dir, 'runc-root');
  results.runc = [];
  for (let i = 0; i < RUNS; i++) results.runc.push((await timed('runc', ['--root', runcRoot, 'run', '--bundle', bundle, `floor-${i}`])).t);

  const names = ONLY ? [ONLY] : ['berthd', 'containerd'];
  const daemons = [];
  for (const name of names) {
    const d = name === 'berthd'
      ? await startBerthd(join(dir, 'berthd'), { nodeArgs: CPU_PROF ? ['--cpu-prof', '--cpu-prof-dir', CPU_PROF] : [] })
      : await startContainerd(join(dir, 'containerd'));
    live.push(d);
    daemons.push(d);
    await ctr(d, ['images', 'import', '--base-name', 'docker.io/berth/bench-tiny', join(dir, 'tiny.tar')]);
    results[name] = { run: [], start: [], teardown: [], idleRss: rssKiB(d.child.pid) / 1024, peakRss: 0 };
  }
  // One warm-up run each (first shim start, first mounts), not counted.
  for (const d of daemons) await ctr(d, ['run', '--rm', IMAGE, `warm-${d.name}`, '/bin/true']);

  for (let i = 0; i < RUNS; i++) {
    for (const d of i % 2 === 0 ? daemons : [...daemons].reverse()) {
      results[d.name].run.push((await ctr(d, ['run', '--rm', IMAGE, `run-${i}`, '/bin/true'])).t);
    }
  }

  for (let round = 0; round < ROUNDS; round++) {
    for (const d of round % 2 === 0 ? daemons : [...daemons].reverse()) {
      const ids = Array.from({ length: CONCURRENT }, (_, k) => `c-${round}-${k}`);
      const sampler = setInterval(() => {
        results[d.name].peakRss = Math.max(results[d.name].peakRss, rssKiB(d.child.pid) / 1024);
      }, 20);
      try {
        let t0 = process.hrtime.bigint();
        await Promise.all(ids.map((id) => ctr(d, ['run', '-d', IMAGE, id, 'sleep', '600'])));
        results[d.name].start.push(ms(process.hrtime.bigint() - t0));
        const running = (await ctr(d, ['tasks', 'ls'])).out.split('\n').filter((l) => / RUNNING\s*$/.test(l)).length;
        if (running !== CONCURRENT) throw new Error(`${d.name}: ${running} of ${CONCURRENT} tasks RUNNING`);
        t0 = process.hrtime.bigint();
        await Promise.all(
          ids.map(async (id) => {
            await ctr(d, ['tasks', 'kill', '-s', 'SIGKILL', id]);
            // Kill returns before the exit; tasks rm of a task still running fails, so retry until it exited.
            for (let attempt = 0; ; attempt++) {
              const r = await ctr(d, ['tasks', 'rm', id], { allowFail: true });
              if (r.code === 0) break;
              if (attempt > 200) throw new Error(`${d.name}: tasks rm ${id} kept failing`);
              await new Promise((resolve) => setTimeout(resolve, 10));
            }
            await ctr(d, ['containers', 'rm', id]);
          }),
        );
        results[d.name].teardown.push(ms(process.hrtime.bigint() - t0));
      } finally {
        clearInterval(sampler);
      }
    }
  }
  for (const d of daemons) {
    const hwm = /VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${d.child.pid}/status`, 'utf8'))?.[1];
    results[d.name].hwm = Number(hwm ?? 0) / 1024;
  }
} finally {
  for (const d of live) {
    await clean(d).catch(() => undefined);
    await stopDaemon(d);
  }
  for (const m of mountsUnder(dir)) await timed('umount', ['-l', m], { allowFail: true });
  await rm(dir, { recursive: true, force: true });
}

const b = results.berthd;
const c = results.containerd;
const ratio = (x, y) => (x && y && x.length && y.length ? (median(x) / median(y)).toFixed(2) : '-');
console.log(`containers run, ${RUNS} runs, ${CONCURRENT} concurrent x ${ROUNDS} rounds; medians [min-max] ms`);
console.log(`${'what'.padEnd(46)} ${'containerd'.padStart(24)} ${'berthd'.padStart(24)} ${'ratio'.padStart(6)}`);
const line = (what, cs, bs) => console.log(`${what.padEnd(46)} ${fmt(cs ?? []).padStart(24)} ${fmt(bs ?? []).padStart(24)} ${ratio(bs, cs).padStart(6)}`);
line('ctr run --rm IMAGE id /bin/true', c?.run, b?.run);
line(`${CONCURRENT} x ctr run -d at once (all started)`, c?.start, b?.start);
line(`${CONCURRENT} x kill, tasks rm, containers rm at once`, c?.teardown, b?.teardown);
console.log(`${'floor: runc run /bin/true on a bundle'.padEnd(46)} ${fmt(results.runc).padStart(24)}`);
for (const [name, r] of [['containerd', c], ['berthd', b]]) {
  if (r) console.log(`${name} memory: RSS idle ${r.idleRss.toFixed(1)} MiB, peak sampled ${r.peakRss.toFixed(1)} MiB, VmHWM ${r.hwm.toFixed(1)} MiB`);
}
