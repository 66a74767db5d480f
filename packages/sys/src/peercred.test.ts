import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, chmodSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { peerCredentials } from './peercred.js';
import { whyNoRoot } from './testing-fixtures/scratch.js';

const dir = mkdtempSync(join(tmpdir(), 'berth-sys-cred-'));
chmodSync(dir, 0o755);
const servers: Server[] = [];
afterAll(async () => {
  for (const s of servers) await new Promise((r) => s.close(r));
  rmSync(dir, { recursive: true, force: true });
});

/** Listens on a fresh socket and resolves each accepted socket through `accepted`. */
async function listen(name: string): Promise<{ path: string; accepted: () => Promise<Socket> }> {
  const path = join(dir, name);
  const queue: Socket[] = [];
  const waiters: ((s: Socket) => void)[] = [];
  const server = createServer((s) => {
    const w = waiters.shift();
    if (w) w(s);
    else queue.push(s);
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(path, r));
  chmodSync(path, 0o777);
  return { path, accepted: () => new Promise((r) => (queue.length ? r(queue.shift()!) : waiters.push(r))) };
}

describe('peerCredentials', () => {
  it('gives our own pid, uid and gid for a connection from this process, on both ends', async () => {
    const { path, accepted } = await listen('self.sock');
    const client = connect(path);
    const server = await accepted();
    await new Promise((r) => client.once('connect', r));
    const me = { pid: process.pid, uid: process.getuid!(), gid: process.getgid!() };
    expect(peerCredentials(server)).toEqual(me);
    expect(peerCredentials(client)).toEqual(me);
    client.destroy();
    server.destroy();
  });

  it('throws EBADF for a socket that has no fd (closed)', async () => {
    const { path, accepted } = await listen('closed.sock');
    const client = connect(path);
    const server = await accepted();
    server.destroy();
    client.destroy();
    expect(() => peerCredentials(server)).toThrow(expect.objectContaining({ code: 'EBADF', syscall: 'getsockopt' }));
  });

  const noRoot = whyNoRoot();
  it.skipIf(noRoot !== undefined)(`gives another process’s pid and uid (a child running as nobody)${noRoot ? ` (skipped: ${noRoot})` : ''}`, async () => {
    const { path, accepted } = await listen('other.sock');
    const child = spawn(process.execPath, ['-e', `const s = require('net').connect(${JSON.stringify(path)}); s.on('close', () => process.exit(0)); s.on('error', () => process.exit(1));`], {
      uid: 65534,
      gid: 65534,
      stdio: 'ignore',
    });
    try {
      const server = await accepted();
      expect(peerCredentials(server)).toEqual({ pid: child.pid, uid: 65534, gid: 65534 });
      server.destroy();
      await new Promise((r) => child.once('exit', r));
    } finally {
      child.kill('SIGKILL');
    }
  });
});
