// The ttrpc server's defences: the peer hook, the buffering budget, the frame timeout, and memory given back
// when connections close.
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { createConnection, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { messageCodec } from '../codec.js';
import { ServiceNames } from '../services.js';
import { TtrpcClient } from './client.js';
import { FRAME_HEADER_LENGTH, FrameDecoder, FrameType, MAX_FRAME_PAYLOAD, encodeFrame } from './frame.js';
import { TtrpcServer, type TtrpcServerOptions } from './server.js';

const Task = ServiceNames.ShimTask;
const MiB = 1 << 20;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let dir: string;
let sock: string;
const cleanups: (() => Promise<void> | void)[] = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'berth-ttrpc-limits-'));
  sock = join(dir, 's.sock');
});

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  await rm(dir, { recursive: true, force: true });
});

let connected = 0;
async function serve(options: TtrpcServerOptions = {}): Promise<TtrpcServer> {
  const server = new TtrpcServer(options);
  server.register(Task, {
    async Connect(req) {
      connected++;
      return { shim_pid: 1, task_pid: 2, version: `v-${req.id}` };
    },
  });
  await server.listen(sock);
  cleanups.push(() => server.close());
  return server;
}

async function open(): Promise<Socket> {
  const s = createConnection({ path: sock });
  s.on('error', () => undefined);
  cleanups.push(() => void s.destroy());
  await once(s, 'connect');
  return s;
}

function header(length: number, streamId: number): Buffer {
  const h = Buffer.alloc(FRAME_HEADER_LENGTH);
  h.writeUInt32BE(length, 0);
  h.writeUInt32BE(streamId, 4);
  h.writeUInt8(FrameType.Request, 8);
  return h;
}

/** A Connect request frame whose payload is padded (an unknown bytes field) to `size` bytes of frame payload. */
function connectFrame(streamId: number, id: string, size?: number): Buffer {
  const payload = messageCodec('containerd.task.v2.ConnectRequest').encode({ id });
  let body = messageCodec('ttrpc.Request').encode({ service: Task, method: 'Connect', payload });
  if (size !== undefined) {
    // ttrpc.Request field 15 (unused), length-delimited: decoders skip it.
    const padLen = size - body.length - 1 - varintLength(size);
    const pad = Buffer.concat([Buffer.from([0x7a]), varint(padLen), Buffer.alloc(padLen, 0x61)]);
    body = Buffer.concat([body, pad]);
    expect(body.length).toBe(size);
  }
  return encodeFrame(streamId, FrameType.Request, body);
}
const varint = (n: number): Buffer => {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return Buffer.from(out);
};
const varintLength = (n: number) => varint(n).length;

/** Collects response frames arriving on a raw socket. */
function responses(s: Socket): { streamIds: number[]; closed: Promise<void> } {
  const decoder = new FrameDecoder();
  const streamIds: number[] = [];
  s.on('data', (c: Buffer) => {
    for (const f of decoder.push(c)) if (f.kind === 'frame') streamIds.push(f.header.streamId);
  });
  return { streamIds, closed: new Promise<void>((r) => s.once('close', () => r())) };
}

async function until(cond: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

describe('peer authorisation', () => {
  it('serves peers the hook accepts and closes the others before reading anything', async () => {
    const seen: Socket[] = [];
    let allow = true;
    await serve({ authorizePeer: (socket) => (seen.push(socket), allow) });
    const client = await TtrpcClient.connect(sock);
    cleanups.push(() => client.close());
    expect((await client.call(Task, 'Connect', { id: 'ok' })).version).toBe('v-ok');
    expect(seen).toHaveLength(1);

    allow = false;
    connected = 0;
    const refused = await open();
    const r = responses(refused);
    refused.write(connectFrame(1, 'refused'));
    await r.closed;
    expect(r.streamIds).toEqual([]);
    expect(connected).toBe(0);
    // The refused socket was never read: nothing it sent reached the server's side of the connection.
    expect(seen[1]!.bytesRead).toBe(0);
  });

  it('refuses a peer whose check throws, and reports the error', async () => {
    const errors: unknown[] = [];
    await serve({
      authorizePeer: () => {
        throw new Error('getsockopt failed');
      },
      onError: (err) => errors.push(err),
    });
    const s = await open();
    const r = responses(s);
    s.write(connectFrame(1, 'x'));
    await r.closed;
    expect(r.streamIds).toEqual([]);
    expect(errors).toEqual([expect.objectContaining({ message: 'getsockopt failed' })]);
  });
});

describe('buffering budget', () => {
  const oneFrame = FRAME_HEADER_LENGTH + MAX_FRAME_PAYLOAD;

  it('refuses a budget smaller than one frame of the largest size', () => {
    expect(() => new TtrpcServer({ maxBufferedBytes: oneFrame - 1 })).toThrow(RangeError);
  });

  it('claims an announced frame without allocating it, and queues frames that do not fit until others finish', async () => {
    const server = await serve({ maxBufferedBytes: oneFrame });
    const frameSize = 3 * MiB;
    const frames = [1, 2, 3].map((i) => connectFrame(1, `big-${i}`, frameSize));
    const sockets = await Promise.all(frames.map(() => open()));
    const seen = sockets.map(responses);
    // Each sends its header and the first MiB: only the first frame fits the budget.
    for (const [i, s] of sockets.entries()) s.write(frames[i]!.subarray(0, MiB));
    await until(() => server.bufferedBytes === FRAME_HEADER_LENGTH + frameSize, 'the first frame to claim its size');
    await sleep(100);
    expect(server.bufferedBytes).toBe(FRAME_HEADER_LENGTH + frameSize);
    // Finishing the queued ones first changes nothing: they are not read.
    sockets[2]!.write(frames[2]!.subarray(MiB));
    sockets[1]!.write(frames[1]!.subarray(MiB));
    await sleep(200);
    expect(seen.map((r) => r.streamIds.length)).toEqual([0, 0, 0]);
    // The first one completes; the others are admitted in arrival order and answered.
    sockets[0]!.write(frames[0]!.subarray(MiB));
    await until(() => seen.every((r) => r.streamIds.length === 1), 'all three answers');
    expect(server.bufferedBytes).toBe(0);
  });

  it('gives a closed connection’s claim back at once, admitting the next', async () => {
    const server = await serve({ maxBufferedBytes: oneFrame });
    const hog = await open();
    hog.write(header(MAX_FRAME_PAYLOAD, 1));
    await until(() => server.bufferedBytes === oneFrame, 'the hog to claim the budget');
    // A frame that arrives whole in one read needs no buffering and is served even now.
    const small = await open();
    const rs = responses(small);
    small.write(connectFrame(1, 'small'));
    await until(() => rs.streamIds.length === 1, 'the small frame’s answer');
    // One that arrives in parts waits, and so does every connection behind it.
    const next = await open();
    const r = responses(next);
    const frame = connectFrame(1, 'next', MiB);
    next.write(frame.subarray(0, 1000));
    await sleep(100);
    const behind = await open();
    const rb = responses(behind);
    behind.write(connectFrame(1, 'behind'));
    next.write(frame.subarray(1000));
    await sleep(200);
    expect([r.streamIds, rb.streamIds]).toEqual([[], []]);
    hog.destroy();
    await until(() => r.streamIds.length === 1 && rb.streamIds.length === 1, 'the queued connections to be answered');
    await until(() => server.bufferedBytes === 0 && server.connectionCount === 3, 'the hog’s claim to be released');
  });

  it('closes a connection whose frame is not completed in time, and reports it', async () => {
    const errors: Error[] = [];
    const server = await serve({ frameTimeoutMs: 200, onError: (e) => errors.push(e as Error) });
    const s = await open();
    const r = responses(s);
    s.write(header(1000, 1));
    s.write(Buffer.alloc(10));
    const started = Date.now();
    await r.closed;
    expect(Date.now() - started).toBeLessThan(5000);
    expect(errors.map((e) => e.message)).toEqual([expect.stringMatching(/frame of 1010 bytes was not completed within 200 ms/)]);
    await until(() => server.bufferedBytes === 0 && server.connectionCount === 0, 'the release');
    // A connection that keeps completing frames is never timed out, however long it stays.
    const client = await TtrpcClient.connect(sock);
    cleanups.push(() => client.close());
    for (let i = 0; i < 5; i++) {
      await client.call(Task, 'Connect', { id: String(i) });
      await sleep(100);
    }
    expect(client.closed).toBe(false);
  });
});

describe('memory', () => {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const settle = async () => {
    for (let i = 0; i < 3; i++) {
      gc();
      await sleep(20);
    }
    return process.memoryUsage().arrayBuffers;
  };

  it('holds at most the budget for 60 unfinished 3 MiB frames, and nothing once their connections close', async () => {
    const budget = 16 * MiB;
    const server = await serve({ maxBufferedBytes: budget });
    const before = await settle();
    // One shared body, so the clients' side costs 3 MiB whatever the number of connections.
    let body: Buffer | undefined = Buffer.alloc(3 * MiB - 1024, 0x61);
    const sockets: Socket[] = [];
    for (let i = 0; i < 60; i++) {
      const s = await open();
      s.write(header(3 * MiB, 1));
      s.write(body);
      sockets.push(s);
    }
    await until(() => server.bufferedBytes > budget - 3 * MiB - FRAME_HEADER_LENGTH, 'the budget to fill');
    await sleep(300);
    const during = process.memoryUsage().arrayBuffers - before;
    expect(server.bufferedBytes).toBeLessThanOrEqual(budget);
    // The budget, the read chunk or two (64 KiB each) the connection that found it full had read before it was
    // paused, the shared body and its headers: the connections behind it were never read.
    expect(during).toBeLessThan(budget + 2 * 64 * 1024 + 4 * MiB);
    body = undefined;
    for (const s of sockets) s.destroy();
    await until(() => server.connectionCount === 0, 'the connections to close');
    expect(server.bufferedBytes).toBe(0);
    // Nothing the connections held is still reachable: a GC takes it all back.
    expect((await settle()) - before).toBeLessThan(4 * MiB);
  });
});
