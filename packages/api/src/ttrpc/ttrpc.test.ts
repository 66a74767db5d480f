import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { createConnection, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { RpcContext } from '@berth/core';
import { messageCodec } from '../codec.js';
import type { ttrpc } from '../generated/types.js';
import { ServiceNames } from '../services.js';
import { RpcStatusError, StatusCode } from '../status.js';
import { TtrpcClient } from './client.js';
import { FRAME_HEADER_LENGTH, FrameDecoder, FrameType, MAX_FRAME_PAYLOAD, encodeFrame } from './frame.js';
import { TtrpcServer } from './server.js';

const Task = ServiceNames.ShimTask;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let dir: string;
let sock: string;
const cleanups: (() => Promise<void>)[] = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'berth-ttrpc-'));
  sock = join(dir, 's.sock');
});

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  await rm(dir, { recursive: true, force: true });
});

async function startServer(server: TtrpcServer, path = sock): Promise<TtrpcServer> {
  await server.listen(path);
  cleanups.push(() => server.close());
  return server;
}

async function connect(path = sock, options?: ConstructorParameters<typeof TtrpcClient>[1]): Promise<TtrpcClient> {
  const client = await TtrpcClient.connect(path, options);
  cleanups.push(() => client.close());
  return client;
}

/** A raw socket speaking frames by hand, for what a well-behaved client never sends. */
class RawPeer {
  private readonly decoder = new FrameDecoder();
  private readonly queue: { streamId: number; status: { code: number; message: string } | null; payload: Buffer }[] = [];
  private waiters: (() => void)[] = [];

  constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      for (const f of this.decoder.push(chunk)) {
        if (f.kind !== 'frame') continue;
        const res = messageCodec('ttrpc.Response').decode(f.payload);
        this.queue.push({ streamId: f.header.streamId, status: res.status, payload: res.payload });
      }
      for (const w of this.waiters.splice(0)) w();
    });
  }

  static async open(path: string): Promise<RawPeer> {
    const socket = createConnection({ path });
    await once(socket, 'connect');
    const peer = new RawPeer(socket);
    cleanups.push(async () => void socket.destroy());
    return peer;
  }

  send(buf: Buffer): void {
    this.socket.write(buf);
  }

  request(streamId: number, service: string, method: string, payload: Uint8Array = Buffer.alloc(0)): void {
    const body = messageCodec('ttrpc.Request').encode({ service, method, payload });
    this.send(encodeFrame(streamId, FrameType.Request, body));
  }

  async next(): Promise<{ streamId: number; status: { code: number; message: string } | null; payload: Buffer }> {
    while (this.queue.length === 0) await new Promise<void>((r) => this.waiters.push(r));
    return this.queue.shift()!;
  }
}

function taskServer(extra: Partial<Record<string, (req: never, ctx: RpcContext) => Promise<unknown>>> = {}) {
  const server = new TtrpcServer({
    errorToStatus: (err) => {
      const e = err as Error & { errdef?: string };
      if (e.errdef === 'not-found') return { code: StatusCode.NOT_FOUND, message: e.message };
      if (e.errdef === 'failed-precondition') return { code: StatusCode.FAILED_PRECONDITION, message: e.message };
      return { code: StatusCode.UNKNOWN, message: e.message };
    },
  });
  server.register(Task, {
    async Connect(req) {
      return { shim_pid: 100, task_pid: 200, version: `v-${req.id}` };
    },
    async State(req, ctx) {
      return {
        id: req.id,
        exec_id: req.exec_id,
        status: 'RUNNING',
        pid: 42,
        bundle: ctx.metadata['containerd-namespace-ttrpc'] ?? '',
        exited_at: { seconds: -62135596800 },
      };
    },
    async Pids(req) {
      const delay = Number(req.id);
      await sleep(delay);
      return { processes: [{ pid: delay }] };
    },
    async Kill(req) {
      if (req.id === 'missing') throw Object.assign(new Error(`container "${req.id}": not found`), { errdef: 'not-found' });
      if (req.id === 'boom') throw new Error('kaboom');
    },
    ...(extra as object),
  });
  return server;
}

describe('ttrpc client and server over a unix socket', () => {
  it('round-trips typed unary calls with metadata', async () => {
    await startServer(taskServer());
    const client = await connect(sock, { metadata: { 'Containerd-Namespace-Ttrpc': 'testns' } });
    const connected = await client.call(Task, 'Connect', { id: 'c1' });
    expect(connected).toEqual({ shim_pid: 100, task_pid: 200, version: 'v-c1' });
    const task = client.service(Task);
    const state = await task.State({ id: 'c1', exec_id: 'e1' });
    expect(state).toMatchObject({ id: 'c1', exec_id: 'e1', status: 'RUNNING', pid: 42, bundle: 'testns' });
    expect(state.exited_at).toEqual({ seconds: -62135596800, nanos: 0 });
    const other = await task.State({ id: 'c2' }, { metadata: { 'containerd-namespace-ttrpc': 'other' } });
    expect(other.bundle).toBe('other');
    expect(await task.Kill({ id: 'c1', signal: 9 })).toEqual({});
  });

  it('multiplexes concurrent calls whose answers come back out of order', async () => {
    await startServer(taskServer());
    const client = await connect();
    const order: number[] = [];
    const delays = [80, 10, 50, 0, 30];
    const results = await Promise.all(
      delays.map(async (d) => {
        const res = await client.call(Task, 'Pids', { id: String(d) });
        order.push(d);
        return res.processes[0]?.pid;
      }),
    );
    expect(results).toEqual(delays);
    expect(order).toEqual([...delays].sort((a, b) => a - b));
    expect(client.inFlight).toBe(0);
  });

  it('uses odd stream ids from 1 and sends metadata and timeout_nano', async () => {
    const seen: { streamId: number; request: ttrpc.Request }[] = [];
    const raw = createServer((s) => {
      const decoder = new FrameDecoder();
      s.on('data', (chunk: Buffer) => {
        for (const f of decoder.push(chunk)) {
          if (f.kind !== 'frame') continue;
          seen.push({ streamId: f.header.streamId, request: messageCodec('ttrpc.Request').decode(f.payload) });
          s.write(encodeFrame(f.header.streamId, FrameType.Response, messageCodec('ttrpc.Response').encode({})));
        }
      });
    });
    raw.listen(sock);
    await once(raw, 'listening');
    cleanups.push(() => new Promise((r) => raw.close(() => r())));
    const client = await connect();
    await client.call(Task, 'Pause', { id: 'a' });
    await client.call(Task, 'Resume', { id: 'b' }, { metadata: { k: ['v1', 'v2'] }, timeoutMs: 1500 });
    await client.callRaw(Task, 'Shutdown', Buffer.alloc(0));
    expect(seen.map((s) => s.streamId)).toEqual([1, 3, 5]);
    expect(seen[1]?.request).toMatchObject({
      service: 'containerd.task.v2.Task',
      method: 'Resume',
      timeout_nano: 1_500_000_000,
      metadata: [
        { key: 'k', value: 'v1' },
        { key: 'k', value: 'v2' },
      ],
    });
    expect(messageCodec('containerd.task.v2.ResumeRequest').decode(seen[1]!.request.payload)).toEqual({ id: 'b' });
    expect(seen[0]?.request.timeout_nano).toBe(0);
    for (const client of [raw]) client.close();
  });

  it('carries handler errors as status codes chosen by errorToStatus', async () => {
    await startServer(taskServer());
    const client = await connect();
    const notFound = await client.call(Task, 'Kill', { id: 'missing' }).catch((e: unknown) => e);
    expect(notFound).toBeInstanceOf(RpcStatusError);
    expect(notFound).toMatchObject({ code: StatusCode.NOT_FOUND, message: 'container "missing": not found' });
    await expect(client.call(Task, 'Kill', { id: 'boom' })).rejects.toMatchObject({ code: StatusCode.UNKNOWN, message: 'kaboom' });
  });

  it('lets the caller map statuses to its own errors', async () => {
    await startServer(taskServer());
    class Mapped extends Error {
      constructor(readonly status: number, message: string) {
        super(message);
      }
    }
    const client = await connect(sock, { statusToError: (s) => new Mapped(s.code, s.message) });
    const err = await client.call(Task, 'Kill', { id: 'missing' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Mapped);
    expect((err as Mapped).status).toBe(StatusCode.NOT_FOUND);
  });

  it('answers Unimplemented for unknown services and unregistered methods', async () => {
    await startServer(taskServer());
    const client = await connect();
    await expect(client.callRaw('containerd.nope.v1.Nope', 'X', Buffer.alloc(0))).rejects.toMatchObject({
      code: StatusCode.UNIMPLEMENTED,
      message: 'service containerd.nope.v1.Nope',
    });
    await expect(client.call(Task, 'Stats', { id: 'x' })).rejects.toMatchObject({
      code: StatusCode.UNIMPLEMENTED,
      message: 'method Stats',
    });
  });

  it('refuses to register handlers for unknown or streaming methods', () => {
    const server = new TtrpcServer();
    expect(() => server.register(Task, { Nope: async () => ({}) } as never)).toThrow(/not found/);
    expect(() => server.register(ServiceNames.Content, { Read: async () => ({}) } as never)).toThrow(/streaming/);
    expect(() => server.register('no.such.Service', {})).toThrow(/not found/);
  });

  it('aborts the handler signal at timeout_nano and the client reports DeadlineExceeded', async () => {
    let aborted: unknown;
    await startServer(
      taskServer({
        Wait: async (_req: never, ctx: RpcContext) => {
          await new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => resolve()));
          aborted = ctx.signal.reason;
          return {};
        },
      }),
    );
    const client = await connect();
    await expect(client.call(Task, 'Wait', { id: 'c' }, { timeoutMs: 50 })).rejects.toMatchObject({
      code: StatusCode.DEADLINE_EXCEEDED,
    });
    await sleep(50);
    expect((aborted as DOMException | undefined)?.name).toBe('TimeoutError');
    expect(client.inFlight).toBe(0);
    // the connection still works after a late answer to a timed-out call
    expect((await client.call(Task, 'Connect', { id: 'z' })).version).toBe('v-z');
  });

  it('cancels a call through an AbortSignal', async () => {
    await startServer(taskServer());
    const client = await connect();
    const ac = new AbortController();
    const pending = client.call(Task, 'Pids', { id: '200' }, { signal: ac.signal });
    ac.abort();
    await expect(pending).rejects.toMatchObject({ code: StatusCode.CANCELLED });
    await expect(client.call(Task, 'Pids', { id: '0' }, { signal: ac.signal })).rejects.toMatchObject({
      code: StatusCode.CANCELLED,
    });
  });

  it('fails pending calls when the client closes, and later calls too', async () => {
    await startServer(taskServer());
    const client = await connect();
    const pending = client.call(Task, 'Pids', { id: '300' });
    await sleep(20);
    await client.close();
    await expect(pending).rejects.toMatchObject({ code: StatusCode.UNAVAILABLE });
    expect(client.closed).toBe(true);
    await expect(client.call(Task, 'Connect', { id: 'x' })).rejects.toMatchObject({ code: StatusCode.UNAVAILABLE });
  });

  it('fails pending calls when the server goes away and aborts their handlers', async () => {
    let handlerSignal: AbortSignal | undefined;
    const server = await startServer(
      taskServer({
        Wait: async (_req: never, ctx: RpcContext) => {
          handlerSignal = ctx.signal;
          await sleep(10_000);
          return {};
        },
      }),
    );
    const client = await connect();
    const pending = client.call(Task, 'Wait', { id: 'c' });
    await sleep(30);
    await server.close();
    await expect(pending).rejects.toMatchObject({ code: StatusCode.UNAVAILABLE });
    await client.done;
    expect(handlerSignal?.aborted).toBe(true);
    await expect(stat(sock)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('rejects a connection to a missing socket with Unavailable', async () => {
    await expect(TtrpcClient.connect(join(dir, 'none.sock'))).rejects.toMatchObject({ code: StatusCode.UNAVAILABLE });
  });

  it('replaces a stale socket file but never another file', async () => {
    // a socket file left behind by a process that died without cleaning up
    const child = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(sock)}, () => console.log('up'))`], {
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    await once(child.stdout!, 'data');
    child.kill('SIGKILL');
    await once(child, 'exit');
    expect((await stat(sock)).isSocket()).toBe(true);
    const server = await startServer(taskServer());
    const client = await connect();
    expect((await client.call(Task, 'Connect', { id: 'a' })).shim_pid).toBe(100);
    expect(server.address).toBe(sock);
    const file = join(dir, 'plain');
    await writeFile(file, 'x');
    await expect(new TtrpcServer().listen(file)).rejects.toMatchObject({ code: 'EADDRINUSE' });
    expect((await stat(file)).isFile()).toBe(true);
    // a live server's socket is not taken over
    await expect(new TtrpcServer().listen(sock)).rejects.toMatchObject({ code: 'EADDRINUSE' });
    expect((await client.call(Task, 'Connect', { id: 'b' })).shim_pid).toBe(100);
  });
});

describe('ttrpc server against malformed input', () => {
  it('answers an even stream id with InvalidArgument and keeps the connection', async () => {
    await startServer(taskServer());
    const peer = await RawPeer.open(sock);
    peer.request(2, Task, 'Connect', messageCodec('containerd.task.v2.ConnectRequest').encode({ id: 'x' }));
    const res = await peer.next();
    expect(res.streamId).toBe(2);
    expect(res.status).toMatchObject({ code: StatusCode.INVALID_ARGUMENT, message: 'StreamID must be odd for client initiated streams' });
    peer.request(3, Task, 'Connect', messageCodec('containerd.task.v2.ConnectRequest').encode({ id: 'y' }));
    const ok = await peer.next();
    expect(ok.status).toBeNull();
    expect(messageCodec('containerd.task.v2.ConnectResponse').decode(ok.payload).version).toBe('v-y');
  });

  it('answers an oversized frame with ResourceExhausted without dropping the connection', async () => {
    await startServer(taskServer());
    const peer = await RawPeer.open(sock);
    const header = Buffer.alloc(FRAME_HEADER_LENGTH);
    header.writeUInt32BE(MAX_FRAME_PAYLOAD + 1, 0);
    header.writeUInt32BE(5, 4);
    header.writeUInt8(FrameType.Request, 8);
    peer.send(header);
    const body = Buffer.alloc(MAX_FRAME_PAYLOAD + 1, 0x55);
    for (let off = 0; off < body.length; off += 256 * 1024) peer.send(body.subarray(off, off + 256 * 1024));
    const res = await peer.next();
    expect(res.streamId).toBe(5);
    expect(res.status?.code).toBe(StatusCode.RESOURCE_EXHAUSTED);
    expect(res.status?.message).toMatch(/exceed maximum message size of 4194304/);
    peer.request(7, Task, 'Connect', messageCodec('containerd.task.v2.ConnectRequest').encode({ id: 'after' }));
    const ok = await peer.next();
    expect(ok.streamId).toBe(7);
    expect(ok.status).toBeNull();
  });

  it('answers an undecodable request envelope with InvalidArgument and a bad payload with Internal', async () => {
    await startServer(taskServer());
    const peer = await RawPeer.open(sock);
    // field 15 with wire type 7, which does not exist
    peer.send(encodeFrame(9, FrameType.Request, Buffer.from([0x7f, 0x01])));
    const bad = await peer.next();
    expect(bad).toMatchObject({ streamId: 9, status: { code: StatusCode.INVALID_ARGUMENT } });
    expect(bad.status?.message).toMatch(/^unmarshal request error/);
    peer.request(11, Task, 'Connect', Buffer.from([0x7f, 0x01]));
    const badPayload = await peer.next();
    expect(badPayload).toMatchObject({ streamId: 11, status: { code: StatusCode.INTERNAL } });
    // response-typed frames from a client are ignored
    peer.send(encodeFrame(13, FrameType.Response, Buffer.alloc(0)));
    peer.request(15, Task, 'Connect', Buffer.alloc(0));
    expect((await peer.next()).streamId).toBe(15);
  });

  it('survives random garbage from many connections', async () => {
    const server = await startServer(taskServer());
    for (let i = 0; i < 20; i++) {
      const s = createConnection({ path: sock });
      await once(s, 'connect');
      s.on('error', () => {});
      s.write(randomBytes(64 + i * 97));
      if (i % 2 === 0) s.destroy();
      else s.end();
    }
    await sleep(50);
    const client = await connect();
    expect((await client.call(Task, 'Connect', { id: 'still' })).version).toBe('v-still');
    expect(server.address).toBe(sock);
  });

  it('ignores responses for unknown stream ids on the client side', async () => {
    const raw = createServer((s) => {
      const decoder = new FrameDecoder();
      s.on('data', (chunk: Buffer) => {
        for (const f of decoder.push(chunk)) {
          if (f.kind !== 'frame') continue;
          s.write(encodeFrame(999, FrameType.Response, Buffer.from([1, 2, 3])));
          s.write(randomBytes(0));
          const body = messageCodec('ttrpc.Response').encode({ status: { code: 5, message: 'x: not found' } });
          s.write(encodeFrame(f.header.streamId, FrameType.Response, body));
        }
      });
    });
    raw.listen(sock);
    await once(raw, 'listening');
    cleanups.push(() => new Promise((r) => raw.close(() => r())));
    const client = await connect();
    await expect(client.call(Task, 'Connect', { id: 'a' })).rejects.toMatchObject({ code: 5, message: 'x: not found' });
    expect(client.closed).toBe(false);
  });
});
