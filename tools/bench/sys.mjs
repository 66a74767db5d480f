#!/usr/bin/env node
// Benchmark: the cost of one call of each @berth/sys primitive through koffi, against the /bin/mount, /bin/umount
// and mkfifo fallbacks (BERTH_SYS_NO_FFI=1 in a child), on a tmpfs it mounts and unmounts itself. Also the cost of
// importing @berth/sys (koffi not loaded) and of the first call (koffi and libc loaded). Run as root after a build:
// node tools/bench/sys.mjs [--calls 200]
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const args = process.argv.slice(2);
const CALLS = Number(args[args.indexOf('--calls') + 1] || 200) || 200;
const repo = new URL('../..', import.meta.url).pathname;
const SYS = join(repo, 'packages/sys/dist/index.js');

if (process.argv[2] === '--child') {
  // Child mode: time the async mount/umount/mkfifo paths once the binding state is fixed by the environment.
  const sys = await import(SYS);
  const dir = process.argv[3];
  const n = Number(process.argv[4]);
  const out = {};
  const median = (xs) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const time = async (name, fn) => {
    const xs = [];
    for (let i = 0; i < n; i++) {
      const t = process.hrtime.bigint();
      await fn(i);
      xs.push(Number(process.hrtime.bigint() - t) / 1e6);
    }
    out[name] = median(xs);
  };
  mkdirSync(`${dir}/src`, { recursive: true });
  mkdirSync(`${dir}/t`, { recursive: true });
  for (const d of ['l1', 'l2', 'u', 'w']) mkdirSync(`${dir}/${d}`, { recursive: true });
  await time('bind mount + umount', async () => {
    await sys.mount(`${dir}/src`, `${dir}/t`, '', sys.MS_BIND);
    await sys.umount2(`${dir}/t`);
  });
  await time('overlay mount + umount', async () => {
    await sys.mount('overlay', `${dir}/t`, 'overlay', 0, `lowerdir=${dir}/l1:${dir}/l2,upperdir=${dir}/u,workdir=${dir}/w`);
    await sys.umount2(`${dir}/t`);
  });
  await time('mkfifo', async (i) => {
    await sys.mkfifo(`${dir}/fifo-${process.env.BERTH_SYS_NO_FFI ?? 0}-${i}`, 0o600);
  });
  console.log(JSON.stringify(out));
  process.exit(0);
}

if (process.getuid() !== 0) throw new Error('run as root: the benchmark mounts');
const dir = mkdtempSync(join(tmpdir(), 'berth-bench-sys-'));
execFileSync('/bin/mount', ['-t', 'tmpfs', 'tmpfs', dir]);
try {
  const importMs = [];
  for (let i = 0; i < 5; i++) {
    const ms = execFileSync(process.execPath, ['-e', `const t = process.hrtime.bigint(); import(${JSON.stringify(SYS)}).then((s) => { const a = Number(process.hrtime.bigint() - t) / 1e6; s.ffiStatus(); const b = Number(process.hrtime.bigint() - t) / 1e6; console.log(a + ' ' + (b - a)); })`], { encoding: 'utf8' });
    importMs.push(ms.trim().split(' ').map(Number));
  }
  const med = (xs) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  console.log(`import @berth/sys: ${med(importMs.map((x) => x[0])).toFixed(1)} ms; first call (koffi + libc): ${med(importMs.map((x) => x[1])).toFixed(1)} ms`);

  const sys = await import(SYS);
  const sync = (name, fn) => {
    fn(-1);
    const t = process.hrtime.bigint();
    for (let i = 0; i < CALLS * 10; i++) fn(i);
    console.log(`${name}: ${(Number(process.hrtime.bigint() - t) / 1e3 / (CALLS * 10)).toFixed(2)} µs/call (koffi)`);
  };
  const server = createServer(() => undefined);
  await new Promise((r) => server.listen(join(dir, 's.sock'), r));
  const client = connect(join(dir, 's.sock'));
  const accepted = await new Promise((r) => server.once('connection', r));
  sync('SO_PEERCRED', () => sys.peerCredentials(accepted));
  client.destroy();
  server.close();
  writeFileSync(join(dir, 'x'), '');
  sync('lsetxattr', () => sys.lsetxattr(join(dir, 'x'), 'trusted.k', Buffer.from([0, 255])));
  sync('lgetxattr', () => sys.lgetxattr(join(dir, 'x'), 'trusted.k'));
  sync('mknod 0/0 + unlink', (i) => {
    const p = join(dir, `wh${i}`);
    sys.mknod(p, sys.S_IFCHR, 0);
    unlinkSync(p);
  });

  const child = (env) =>
    JSON.parse(execFileSync(process.execPath, [new URL(import.meta.url).pathname, '--child', dir, String(CALLS)], { env: { ...process.env, ...env }, encoding: 'utf8' }));
  const ffi = child({});
  const exec = child({ BERTH_SYS_NO_FFI: '1' });
  for (const name of Object.keys(ffi)) {
    console.log(`${name}: koffi ${ffi[name].toFixed(3)} ms, fallback tool ${exec[name].toFixed(3)} ms (median of ${CALLS}; ${(exec[name] / ffi[name]).toFixed(0)}x)`);
  }
} finally {
  execFileSync('/bin/umount', ['-l', dir]);
  rmSync(dir, { recursive: true, force: true });
}
