#!/usr/bin/env node
// Benchmark: ingest and read back a random blob through `ctr content ingest` / `ctr content get`, against berthd
// and against Debian's containerd, both started here on temp dirs, in the same run. Prints MiB/s for each, the
// ratio berthd/containerd, and each daemon's peak RSS growth during the transfers (sampled from /proc).
// Usage: node tools/bench/content.mjs [--size-mib 512] [--rounds 2]
import { spawn } from 'node:child_process';
import { createReadStream, createWriteStream, existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';

const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : def;
};
const SIZE_MIB = opt('size-mib', 512);
const ROUNDS = opt('rounds', 2);
const repo = new URL('../..', import.meta.url).pathname;
const BERTHD = join(repo, 'packages/daemon/dist/main.js');

const rssKiB = (pid) => {
  try {
    return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
  } catch {
    return 0;
  }
};

async function waitSocket(path, child, timeoutMs = 20000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`daemon exited with ${child.exitCode}`);
    if (existsSync(path)) {
      const ok = await new Promise((resolve) => {
        const s = connect(path, () => { s.destroy(); resolve(true); });
        s.on('error', () => resolve(false));
      });
      if (ok) return;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`no socket at ${path}`);
}

async function startBerthd(dir) {
  const sock = join(dir, 'berth.sock');
  const child = spawn(process.execPath, [BERTHD, '--root', join(dir, 'root'), '--state', join(dir, 'state'), '--address', sock, '--log-level', 'warn'], { stdio: ['ignore', 'ignore', 'ignore'] });
  await waitSocket(sock, child);
  return { name: 'berthd', sock, child };
}

async function startContainerd(dir) {
  const sock = join(dir, 'containerd.sock');
  const config = join(dir, 'containerd.toml');
  await mkdir(dir, { recursive: true });
  await writeFile(config, [
    'version = 2',
    `root = "${join(dir, 'root')}"`,
    `state = "${join(dir, 'state')}"`,
    'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
    '[grpc]', `address = "${sock}"`,
    '[ttrpc]', `address = "${sock}.ttrpc"`,
  ].join('\n'));
  const child = spawn('/usr/bin/containerd', ['--config', config, '--log-level', 'warn'], { stdio: ['ignore', 'ignore', 'ignore'] });
  await waitSocket(sock, child);
  return { name: 'containerd', sock, child };
}

function ctr(sock, cmd, { stdinFile, stdoutFile } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn('/usr/bin/ctr', ['--address', sock, '-n', 'bench', ...cmd], { stdio: ['pipe', 'pipe', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    if (stdinFile) createReadStream(stdinFile).pipe(child.stdin);
    else child.stdin.end();
    if (stdoutFile) child.stdout.pipe(createWriteStream(stdoutFile));
    else child.stdout.resume();
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`ctr ${cmd.join(' ')}: exit ${code}: ${err}`))));
  });
}

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
  if (!existsSync(BERTHD)) throw new Error('build first: pnpm nx run @berth/daemon:build');
  if (!existsSync('/usr/bin/containerd')) throw new Error('containerd is needed as the reference (apt-get install containerd)');
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
    for (const d of daemons) {
      d.child.kill('SIGTERM');
      if (d.child.exitCode === null) await once(d.child, 'exit');
    }
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err.message);
  process.exit(1);
});
