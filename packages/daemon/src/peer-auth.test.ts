import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Logger } from '@berth/core';
import { requireSameUser } from './peer-auth.js';

const dir = mkdtempSync(join(tmpdir(), 'berth-peer-auth-'));
const path = join(dir, 's.sock');
const server = createServer();
const accepted: Socket[] = [];
server.on('connection', (s) => accepted.push(s));
const ready = new Promise<void>((r) => server.listen(path, r));
afterAll(async () => {
  for (const s of accepted) s.destroy();
  await new Promise((r) => server.close(r));
  rmSync(dir, { recursive: true, force: true });
});

/** A server-side socket whose peer is this process. */
async function ownPeer(): Promise<Socket> {
  await ready;
  const n = accepted.length;
  const c = connect(path);
  c.on('error', () => undefined);
  while (accepted.length === n) await new Promise((r) => setTimeout(r, 5));
  return accepted[n]!;
}

type Warning = { msg: string; fields?: Readonly<Record<string, unknown>> };
function recordingLog(): Logger & { warnings: Warning[] } {
  const warnings: Warning[] = [];
  const nop = () => undefined;
  const warn = (msg: string, fields?: Readonly<Record<string, unknown>>) => void warnings.push({ msg, fields });
  return { trace: nop, debug: nop, info: nop, error: nop, warn, child: () => recordingLog(), warnings } as never;
}

describe('requireSameUser', () => {
  it('accepts a peer with the daemon’s uid and gid', async () => {
    const log = recordingLog();
    expect(requireSameUser(log)(await ownPeer())).toBe(true);
    expect(log.warnings).toEqual([]);
  });

  it('refuses a peer whose uid or gid differs, logging once per interval with the count in between', async () => {
    const log = recordingLog();
    let t = 0;
    const check = requireSameUser(log, { uid: process.geteuid!() + 1, logIntervalMs: 1000, now: () => t });
    const peer = await ownPeer();
    expect(check(peer)).toBe(false);
    t = 500;
    expect(check(peer)).toBe(false);
    expect(check(peer)).toBe(false);
    expect(log.warnings).toHaveLength(1);
    expect(log.warnings[0]!.fields).toMatchObject({ pid: process.pid, uid: process.geteuid!(), gid: process.getegid!() });
    t = 1500;
    expect(check(peer)).toBe(false);
    expect(log.warnings).toHaveLength(2);
    expect(log.warnings[1]!.fields).toMatchObject({ suppressed: 2 });
    const gidCheck = requireSameUser(recordingLog(), { gid: process.getegid!() + 1 });
    expect(gidCheck(peer)).toBe(false);
  });

  it('refuses a socket whose credentials cannot be read (closed)', async () => {
    const log = recordingLog();
    const peer = await ownPeer();
    peer.destroy();
    expect(requireSameUser(log)(peer)).toBe(false);
    expect(log.warnings[0]!.msg).toMatch(/cannot be read/);
    expect(String(log.warnings[0]!.fields?.error)).toMatch(/EBADF/);
  });
});
