#!/usr/bin/env node
// Measures what a ttrpc server holds for connections that each send an unfinished frame: a child process serves
// @berth/api's TtrpcServer (the built dist), this process opens N connections that each announce a frame of F MiB
// and send all of it but the last KiB, then closes them. Prints the server's rss / heapUsed / arrayBuffers at idle,
// while the frames are pending, 2 s after the connections closed, and after a forced GC, and (with --snapshot)
// writes a heap snapshot after the GC so retained objects can be told from memory the allocator kept.
// Usage: node tools/bench/ttrpc-buffering.mjs [--connections 200] [--frame-mib 3] [--snapshot]
import { fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';

const args = process.argv.slice(2);
const opt = (name, def) => (args.includes(`--${name}`) ? Number(args[args.indexOf(`--${name}`) + 1]) : def);
const CONNECTIONS = opt('connections', 200);
const FRAME = opt('frame-mib', 3) * (1 << 20);
const SNAPSHOT = args.includes('--snapshot');
const repo = new URL('../..', import.meta.url).pathname;

if (process.env.TTRPC_BUFFERING_CHILD) {
  const { TtrpcServer } = await import(join(repo, 'packages/api/dist/index.js'));
  const server = new TtrpcServer({ onError: () => undefined });
  await server.listen(process.env.TTRPC_BUFFERING_CHILD);
  process.on('message', async (m) => {
    if (m === 'gc') {
      globalThis.gc();
      await new Promise((r) => setTimeout(r, 100));
      globalThis.gc();
    }
    if (m === 'snapshot') {
      const { writeHeapSnapshot } = await import('node:v8');
      process.send({ snapshot: writeHeapSnapshot(join(tmpdir(), `ttrpc-buffering-${process.pid}.heapsnapshot`)) });
      return;
    }
    if (m === 'stop') {
      await server.close();
      process.exit(0);
    }
    const u = process.memoryUsage();
    process.send({ rss: u.rss, heapUsed: u.heapUsed, arrayBuffers: u.arrayBuffers, external: u.external });
  });
  process.send('ready');
} else {
  const dir = mkdtempSync(join(tmpdir(), 'berth-ttrpc-mem-'));
  const path = join(dir, 'ttrpc.sock');
  const child = fork(new URL(import.meta.url).pathname, args, { env: { ...process.env, TTRPC_BUFFERING_CHILD: path }, execArgv: ['--expose-gc'] });
  const ask = async (m) => {
    child.send(m);
    const [reply] = await once(child, 'message');
    return reply;
  };
  const mib = (n) => (n / (1 << 20)).toFixed(1).padStart(7);
  const show = (label, u) => console.log(`${label.padEnd(34)} rss ${mib(u.rss)} MiB  heapUsed ${mib(u.heapUsed)} MiB  arrayBuffers ${mib(u.arrayBuffers)} MiB`);
  try {
    await once(child, 'message');
    await ask('gc');
    const idle = await ask('usage');
    show('idle', idle);
    const header = Buffer.alloc(10);
    header.writeUInt32BE(FRAME, 0);
    header.writeUInt32BE(1, 4);
    header.writeUInt8(1, 8);
    const body = Buffer.alloc(FRAME - 1024, 0x61);
    const sockets = [];
    let closedEarly = 0;
    const started = Date.now();
    for (let i = 0; i < CONNECTIONS; i++) {
      const s = createConnection({ path });
      s.on('error', () => undefined);
      s.on('close', () => closedEarly++);
      await once(s, 'connect');
      s.write(header);
      s.write(body);
      sockets.push(s);
    }
    // Sample until the server's usage stops growing (the kernel has handed over what the server will read).
    let during = await ask('usage');
    for (let i = 0; i < 25; i++) {
      await new Promise((r) => setTimeout(r, 200));
      const u = await ask('usage');
      const settled = Math.abs(u.arrayBuffers - during.arrayBuffers) < (1 << 20);
      during = u.rss > during.rss ? u : during;
      if (settled && i >= 4) break;
    }
    show(`${CONNECTIONS} unfinished ${FRAME >> 20} MiB frames`, during);
    console.log(`  sampled ${((Date.now() - started) / 1000).toFixed(1)} s after the first connect; connections the server had closed by then: ${closedEarly}`);
    for (const s of sockets) s.destroy();
    await new Promise((r) => setTimeout(r, 2000));
    const after = await ask('usage');
    show('2 s after closing them', after);
    await ask('gc');
    const gc = await ask('usage');
    show('after a forced GC', gc);
    if (SNAPSHOT) console.log(`heap snapshot: ${(await ask('snapshot')).snapshot}`);
    console.log(`growth over idle: during ${mib(during.rss - idle.rss)} MiB rss, after close ${mib(after.rss - idle.rss)} MiB rss / ${mib(after.arrayBuffers - idle.arrayBuffers)} MiB arrayBuffers, after GC ${mib(gc.rss - idle.rss)} MiB rss / ${mib(gc.arrayBuffers - idle.arrayBuffers)} MiB arrayBuffers`);
  } finally {
    child.send('stop');
    await once(child, 'exit');
    rmSync(dir, { recursive: true, force: true });
  }
}
