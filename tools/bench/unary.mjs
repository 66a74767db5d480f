// The hot unary path: Version calls over berthd's gRPC socket (grpc-js client, raw bytes, nothing decoded), one at a
// time and 32 in flight, a fresh daemon each round. Prints calls/s, per-call latency and berthd's CPU time per call
// (utime + stime from /proc, which a loaded machine disturbs far less than wall-clock figures), medians.
// With --metrics, berthd serves /v1/metrics (which turns the per-call gRPC meters on) and the bench scrapes it after.
// Usage: node tools/bench/unary.mjs [--calls 20000] [--rounds 3] [--metrics]
import { createRequire } from 'node:module';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startBerthd } from './lib/daemons.mjs';

const { values } = parseArgs({ options: { calls: { type: 'string', default: '20000' }, rounds: { type: 'string', default: '3' }, metrics: { type: 'boolean', default: false } } });
const calls = Number(values.calls);
const rounds = Number(values.rounds);
const require = createRequire(new URL('../../packages/daemon/package.json', import.meta.url));
const grpc = require('@grpc/grpc-js');

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const identity = (b) => b;
/** utime + stime of a process, in microseconds (clock ticks of 10 ms on Linux). */
const cpuUs = (pid) => {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) * 10_000;
};

async function measure(sock, pid) {
  const client = new grpc.Client(`unix://${sock}`, grpc.credentials.createInsecure());
  const call = () => new Promise((resolve, reject) => {
    client.makeUnaryRequest('/containerd.services.version.v1.Version/Version', identity, identity, Buffer.alloc(0), (err) => (err ? reject(err) : resolve()));
  });
  for (let i = 0; i < 500; i++) await call(); // warm-up
  const cpu0 = cpuUs(pid);
  let t = process.hrtime.bigint();
  for (let i = 0; i < calls; i++) await call();
  const sequentialUs = Number(process.hrtime.bigint() - t) / 1000 / calls;
  const cpuPerCall = (cpuUs(pid) - cpu0) / calls;
  t = process.hrtime.bigint();
  let next = 0;
  await Promise.all(Array.from({ length: 32 }, async () => {
    while (next++ < calls) await call();
  }));
  const concurrentPerS = calls / (Number(process.hrtime.bigint() - t) / 1e9);
  client.close();
  return { sequentialUs, concurrentPerS, cpuPerCall };
}

const seq = [];
const conc = [];
const cpu = [];
for (let r = 0; r < rounds; r++) {
  const dir = await mkdtemp(join(tmpdir(), 'berth-bench-unary-'));
  const args = [];
  if (values.metrics) {
    await writeFile(join(dir, 'config.toml'), '[metrics]\naddress = "127.0.0.1:0"\n');
    args.push('--config', join(dir, 'config.toml'));
  }
  const d = await startBerthd(dir, { args });
  try {
    const m = await measure(d.sock, d.child.pid);
    seq.push(m.sequentialUs);
    conc.push(m.concurrentPerS);
    cpu.push(m.cpuPerCall);
    console.log(`round ${r + 1}: sequential ${m.sequentialUs.toFixed(1)} us/call (${(1e6 / m.sequentialUs).toFixed(0)} calls/s), berthd CPU ${m.cpuPerCall.toFixed(1)} us/call; 32 in flight ${m.concurrentPerS.toFixed(0)} calls/s`);
  } finally {
    d.child.kill('SIGTERM');
    await new Promise((r) => (d.child.exitCode !== null ? r() : d.child.once('exit', r)));
    await rm(dir, { recursive: true, force: true });
  }
}
console.log(`median: sequential ${median(seq).toFixed(1)} us/call, berthd CPU ${median(cpu).toFixed(1)} us/call, 32 in flight ${median(conc).toFixed(0)} calls/s (${calls} calls, ${rounds} rounds)`);
