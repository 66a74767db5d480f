// The ttrpc socket trusts only the daemon's own user (issue 6, defect 4): containerd's UnixSocketRequireSameUser.
// With `[grpc] gid` set, the gRPC socket is the group's (0660) but the ttrpc socket stays 0600, and a peer with
// another uid that reaches it anyway is closed unread, logged once, and its events go nowhere.
import { spawn } from 'node:child_process';
import { chmod, stat } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FrameType, ServiceNames, TtrpcClient, encodeFrame, messageCodec, packAny } from '@berth/api';
import { hasCtr, hasRoot, startBerthd, type Berthd } from './harness.js';

const NOBODY = 65534;

/** A Forward of a /tasks/exit event for container `id`, as one ttrpc request frame. */
function forwardFrame(id: string): Buffer {
  const payload = messageCodec('containerd.services.events.ttrpc.v1.ForwardRequest').encode({
    envelope: {
      timestamp: { seconds: Math.floor(Date.now() / 1000), nanos: 0 },
      namespace: 'peerns',
      topic: '/tasks/exit',
      event: packAny('containerd.events.TaskExit', { container_id: id, id, pid: 1, exit_status: 9 }),
    },
  });
  const body = messageCodec('ttrpc.Request').encode({ service: ServiceNames.TtrpcEvents, method: 'Forward', payload, metadata: [] });
  return encodeFrame(1, FrameType.Request, body);
}

/**
 * Runs a node child as uid/gid `uid` that connects to `path`, sends `frame`, and reports what came back: the
 * number of response bytes and whether the server closed the connection (within 5 s).
 */
function peerAs(uid: number, path: string, frame: Buffer): Promise<{ pid: number; bytes: number; closed: boolean; error?: string }> {
  const script = `
    const s = require('net').connect(${JSON.stringify(path)});
    let bytes = 0, closed = false, error;
    s.on('connect', () => s.write(Buffer.from(${JSON.stringify(frame.toString('hex'))}, 'hex')));
    s.on('data', (d) => { bytes += d.length; });
    s.on('error', (e) => { error = e.code; });
    s.on('close', () => { closed = true; finish(); });
    const timer = setTimeout(finish, 5000);
    function finish() { clearTimeout(timer); process.stdout.write(JSON.stringify({ bytes, closed, error })); process.exit(0); }
  `;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', script], { uid, gid: uid, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.once('error', reject);
    child.once('exit', () => {
      try {
        resolve({ pid: child.pid!, ...(JSON.parse(out) as { bytes: number; closed: boolean; error?: string }) });
      } catch (err) {
        reject(new Error(`peer child printed ${JSON.stringify(out)}`, { cause: err }));
      }
    });
  });
}

describe.skipIf(!hasRoot() || !hasCtr())('the ttrpc socket and its peers', () => {
  let daemon: Berthd;
  let ttrpcPath: string;
  beforeAll(async () => {
    daemon = await startBerthd({ grpcConfig: `gid = ${NOBODY}` });
    ttrpcPath = `${daemon.address}.ttrpc`;
  });
  afterAll(async () => {
    await daemon?.stop();
  });

  it('gives the gRPC socket the [grpc] gid (0660) and keeps the ttrpc socket owner-only (0600)', async () => {
    const grpc = await stat(daemon.address);
    expect(grpc.mode & 0o777).toBe(0o660);
    expect(grpc.gid).toBe(NOBODY);
    const ttrpc = await stat(ttrpcPath);
    expect(ttrpc.mode & 0o777).toBe(0o600);
    expect([ttrpc.uid, ttrpc.gid]).toEqual([process.geteuid!(), process.getegid!()]);
    // As the socket is, another user cannot even connect.
    const blocked = await peerAs(NOBODY, ttrpcPath, forwardFrame('blocked'));
    expect(blocked.error).toBe('EACCES');
  });

  it('closes a peer with another uid unread (logged once, rate-limited), and serves our own uid', async () => {
    const events = spawn('/usr/bin/ctr', ['--address', daemon.address, 'events', 'topic=="/tasks/exit"'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let seen = '';
    events.stdout.on('data', (d: Buffer) => (seen += d.toString()));
    try {
      await new Promise((r) => setTimeout(r, 500));
      // Make the socket (and the temp dir above it) reachable for the test, as a careless mode would.
      await chmod(daemon.dir, 0o711);
      await chmod(ttrpcPath, 0o666);
      const refused = [];
      for (let i = 0; i < 3; i++) refused.push(await peerAs(NOBODY, ttrpcPath, forwardFrame(`forged-${i}`)));
      for (const r of refused) expect(r).toMatchObject({ bytes: 0, closed: true });

      const client = await TtrpcClient.connect(ttrpcPath);
      try {
        await client.service(ServiceNames.TtrpcEvents).Forward({
          envelope: {
            timestamp: { seconds: Math.floor(Date.now() / 1000), nanos: 0 },
            namespace: 'peerns',
            topic: '/tasks/exit',
            event: packAny('containerd.events.TaskExit', { container_id: 'genuine', id: 'genuine', pid: 1, exit_status: 0 }),
          },
        });
      } finally {
        await client.close();
      }
      const deadline = Date.now() + 5000;
      while (!seen.includes('genuine') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect(seen).toContain('"container_id":"genuine"');
      expect(seen).not.toContain('forged');

      const lines = daemon.logs.split('\n').filter((l) => l.includes('refused a peer'));
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(new RegExp(`level=warn .* pid=${refused[0]!.pid} uid=${NOBODY} gid=${NOBODY}\\b`));
    } finally {
      events.kill('SIGKILL');
    }
  });
});
