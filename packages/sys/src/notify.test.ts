import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { bindDatagramSocket, sdNotify, unixAddress, type DatagramSocket } from './notify.js';

const dir = mkdtempSync(join(tmpdir(), 'berth-sys-notify-'));
const sockets: DatagramSocket[] = [];
afterAll(() => {
  for (const s of sockets) s.close();
  rmSync(dir, { recursive: true, force: true });
});

function bound(path: string): DatagramSocket {
  const s = bindDatagramSocket(path);
  sockets.push(s);
  return s;
}

describe('unixAddress', () => {
  it('lays out a path with its terminator, an abstract name after a NUL', () => {
    const p = unixAddress('/run/x');
    expect(p.length).toBe(2 + 7);
    expect(p.addr.readUInt16LE(0)).toBe(1);
    expect(p.addr.subarray(2, 9).toString('latin1')).toBe('/run/x\0');
    const a = unixAddress('@abc');
    expect(a.length).toBe(2 + 4);
    expect(a.addr.subarray(2, 6).toString('latin1')).toBe('\0abc');
  });

  it('refuses a path longer than sockaddr_un holds', () => {
    expect(() => unixAddress(`/${'x'.repeat(107)}`)).toThrow(expect.objectContaining({ code: 'ENAMETOOLONG' }));
  });
});

describe('sdNotify', () => {
  it('does nothing without NOTIFY_SOCKET', () => {
    expect(sdNotify('READY=1', {})).toBe(false);
  });

  it('delivers the state to a socket at a path', async () => {
    const s = bound(join(dir, 'notify.sock'));
    expect(sdNotify('READY=1\nMAINPID=42', { NOTIFY_SOCKET: s.path })).toBe(true);
    expect(await s.receive(2000)).toBe('READY=1\nMAINPID=42');
    expect(await s.receive(30)).toBeUndefined();
  });

  it('delivers to an abstract socket named with @, as systemd writes it', async () => {
    const s = bound(`@berth-test-${process.pid}`);
    expect(sdNotify('STOPPING=1', { NOTIFY_SOCKET: s.path })).toBe(true);
    expect(await s.receive(2000)).toBe('STOPPING=1');
  });

  it('throws ECONNREFUSED/ENOENT with the path when nobody listens, and EINVAL for a relative name', () => {
    const path = join(dir, 'nobody.sock');
    expect(() => sdNotify('READY=1', { NOTIFY_SOCKET: path })).toThrow(expect.objectContaining({ code: 'ENOENT', path }));
    expect(() => sdNotify('READY=1', { NOTIFY_SOCKET: 'relative' })).toThrow(expect.objectContaining({ code: 'EINVAL' }));
  });
});
