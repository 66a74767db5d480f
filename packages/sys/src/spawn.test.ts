import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ffiStatus } from './binding.js';
import { decodeWaitStatus, spawnPiped, type SpawnedChild } from './spawn.js';

async function collect(spawned: SpawnedChild | Promise<SpawnedChild>, input?: string): Promise<{ out: string; err: string; code: number | null; signal: NodeJS.Signals | null }> {
  const child = await spawned;
  let out = '';
  let err = '';
  child.stdout.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr.on('data', (b: Buffer) => (err += b.toString()));
  if (input !== undefined) child.stdin.write(input);
  child.stdin.end();
  const exit = await child.exited;
  return { out, err, ...exit };
}

describe('decodeWaitStatus', () => {
  it('reads exit codes and signals from a wait status word', () => {
    expect(decodeWaitStatus(0)).toEqual({ code: 0, signal: null });
    expect(decodeWaitStatus(3 << 8)).toEqual({ code: 3, signal: null });
    expect(decodeWaitStatus(9)).toEqual({ code: null, signal: 'SIGKILL' });
    expect(decodeWaitStatus(15 | 0x80)).toEqual({ code: null, signal: 'SIGTERM' }); // core dump bit
  });
});

describe.skipIf(!ffiStatus().loaded)('spawnPiped', () => {
  it('runs the binary with argv, env and cwd, feeds stdin and returns stdout, stderr and the exit code', async () => {
    const dir = realpathSync(mkdtempSync(join(tmpdir(), 'berth-sys-spawn-')));
    try {
      const child = await spawnPiped('/bin/sh', ['sh', '-c', 'read line; echo "got $line in $(pwd) with $FOO"; echo oops >&2; exit 3'], {
        cwd: dir,
        env: { FOO: 'bar', PATH: '/usr/bin:/bin' },
      });
      expect(child.pid).toBeGreaterThan(0);
      const r = await collect(child, 'hello\n');
      expect(r).toEqual({ out: `got hello in ${dir} with bar\n`, err: 'oops\n', code: 3, signal: null });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('reports the signal that ended the child', async () => {
    const child = spawnPiped('/bin/sh', ['sh', '-c', 'kill -KILL $$']);
    expect(await collect(child)).toMatchObject({ code: null, signal: 'SIGKILL' });
  });

  it('starts the child with default signal dispositions (Node ignores SIGPIPE) and, when asked, in a session of its own', async () => {
    const child = await spawnPiped('/bin/sh', ['sh', '-c', 'grep -E "^Sig(Ign|Blk)" /proc/self/status; ps -o sid= -o pgid= -p $$'], { newSession: true });
    const r = await collect(child);
    expect(r.code).toBe(0);
    const mask = (name: string) => BigInt(`0x${new RegExp(`${name}:\\s+([0-9a-f]+)`).exec(r.out)![1]}`);
    // Signals 1-31 (32 and 33 are glibc's own: sigfillset leaves them out): none ignored, none blocked.
    expect(mask('SigIgn') & 0x7fffffffn).toBe(0n);
    expect(mask('SigBlk') & 0x7fffffffn).toBe(0n);
    const [sid, pgid] = r.out.trim().split('\n').at(-1)!.trim().split(/\s+/).map(Number);
    expect(sid).toBe(child.pid);
    expect(pgid).toBe(child.pid);
  });

  it('fails to start a missing binary with ENOENT and leaves no descriptor open', async () => {
    const before = readdirSync('/proc/self/fd').length;
    await expect(spawnPiped('/nonexistent/binary', ['x'])).rejects.toMatchObject({ code: 'ENOENT', syscall: 'posix_spawn' });
    await expect(spawnPiped('/bin/true', ['true'], { cwd: '/nonexistent/dir' })).rejects.toMatchObject({ code: 'ENOENT' });
    expect(readdirSync('/proc/self/fd').length).toBe(before);
  });

  it('closes every pipe once the child is done (no descriptor leak over many runs)', async () => {
    const before = readdirSync('/proc/self/fd').length;
    for (let i = 0; i < 50; i++) expect((await collect(spawnPiped('/bin/echo', ['echo', String(i)]))).out).toBe(`${i}\n`);
    expect(readdirSync('/proc/self/fd').length).toBe(before);
  });

  it('does not block the event loop while a large process starts children (child_process.spawn forks the whole heap)', async () => {
    // Resident memory a fork would have to copy the page tables of; the spawn must not pay for it.
    const ballast = Array.from({ length: 256 }, () => Buffer.alloc(1 << 20, 1));
    let longest = 0;
    for (let i = 0; i < 20; i++) {
      const t0 = performance.now();
      const child = spawnPiped('/bin/true', ['true']); // its synchronous part is what the event loop waits for
      longest = Math.max(longest, performance.now() - t0);
      expect((await collect(child)).code).toBe(0);
    }
    expect(ballast.length).toBe(256);
    // Generous stall detection, not a performance target: a fork of 256 MiB blocks for 100-350 ms under load.
    expect(longest).toBeLessThan(100);
  });

  it('is usable alongside child_process (libuv reaps only its own children)', async () => {
    const a = spawnPiped('/bin/sh', ['sh', '-c', 'sleep 0.2; exit 4']);
    const b = spawn('/bin/sh', ['-c', 'exit 5']);
    const bExit = new Promise<number | null>((resolve) => b.on('close', (code) => resolve(code)));
    const [ra, rb] = await Promise.all([collect(a), bExit]);
    expect(ra.code).toBe(4);
    expect(rb).toBe(5);
  });
});
