// ttrpc with strict decoding, both ways: a server refuses malformed envelopes and payloads with ttrpc's codes
// (envelope: InvalidArgument, payload: Internal) without calling the handler; a client refuses a malformed response.
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { messageCodec } from '../codec.js';
import type { google } from '../generated/types.js';
import { ServiceNames } from '../services.js';
import { StatusCode } from '../status.js';
import { TtrpcClient } from './client.js';
import { FrameDecoder, FrameType, encodeFrame } from './frame.js';
import { TtrpcServer } from './server.js';

const Events = ServiceNames.TtrpcEvents;

let dir: string;
let sock: string;
const cleanups: (() => Promise<void> | void)[] = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'berth-ttrpc-strict-'));
  sock = join(dir, 's.sock');
});

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  await rm(dir, { recursive: true, force: true });
});

/** Sends frames by hand and collects the responses' statuses by stream id. */
async function rawPeer(path: string) {
  const socket: Socket = createConnection({ path });
  await once(socket, 'connect');
  cleanups.push(() => void socket.destroy());
  const decoder = new FrameDecoder();
  const responses = new Map<number, google.rpc.Status | null>();
  const waiters = new Map<number, () => void>();
  socket.on('data', (chunk: Buffer) => {
    for (const f of decoder.push(chunk)) {
      if (f.kind !== 'frame') continue;
      responses.set(f.header.streamId, messageCodec('ttrpc.Response').decode(f.payload).status);
      waiters.get(f.header.streamId)?.();
    }
  });
  return {
    async send(streamId: number, body: Buffer): Promise<google.rpc.Status | null> {
      const answered = new Promise<void>((resolve) => waiters.set(streamId, resolve));
      socket.write(encodeFrame(streamId, FrameType.Request, body));
      await answered;
      return responses.get(streamId) ?? null;
    },
    request(streamId: number, payload: Buffer) {
      return this.send(streamId, messageCodec('ttrpc.Request').encode({ service: Events, method: 'Forward', payload }));
    },
  };
}

describe('ttrpc server with malformed requests', () => {
  let forwarded: string[];

  beforeEach(async () => {
    forwarded = [];
    const server = new TtrpcServer();
    server.register(Events, {
      Forward: async (req) => {
        forwarded.push(req.envelope?.topic ?? '');
        return {};
      },
    });
    await server.listen(sock);
    cleanups.push(() => server.close());
  });

  const forward = messageCodec('containerd.services.events.ttrpc.v1.ForwardRequest');
  const envelope = (nanos: number) => ({
    envelope: { timestamp: { seconds: 1_700_000_000, nanos }, namespace: 'default', topic: '/tasks/exit', event: { type_url: 'x', value: Buffer.from([1]) } },
  });

  it('answers a malformed Forward payload with Internal and never calls the handler, then serves the next', async () => {
    const peer = await rawPeer(sock);
    const good = forward.encode(envelope(0));
    const cases: [string, Buffer][] = [
      ['truncated', good.subarray(0, good.length - 2)],
      ['nanos of 2e9', forward.encode(envelope(2_000_000_000))],
      ['field number 0', Buffer.concat([Buffer.from([0x00, 0x00]), good])],
      ['wrong wire type', Buffer.concat([Buffer.from([0x08, 0x01]), good])],
    ];
    let stream = 1;
    for (const [what, payload] of cases) {
      const status = await peer.request(stream, payload);
      stream += 2;
      expect(status?.code, what).toBe(StatusCode.INTERNAL);
      expect(status?.message, what).toMatch(/^ttrpc: error unmarshalling payload: proto: containerd\.services\.events\.ttrpc\.v1\.ForwardRequest: field /);
    }
    expect((await peer.request(11, forward.encode(envelope(2_000_000_000))))?.message).toContain('timestamp nanos 2000000000 not in range [0, 1e9)');
    expect(forwarded).toEqual([]);
    expect(await peer.request(13, good)).toBeNull();
    expect(forwarded).toEqual(['/tasks/exit']);
  });

  it('answers a malformed envelope with InvalidArgument naming ttrpc.Request', async () => {
    const peer = await rawPeer(sock);
    const body = messageCodec('ttrpc.Request').encode({ service: Events, method: 'Forward', payload: forward.encode(envelope(0)) });
    const truncated = await peer.send(1, body.subarray(0, body.length - 3));
    expect(truncated?.code).toBe(StatusCode.INVALID_ARGUMENT);
    const payloadAt = 2 + Events.length + 2 + 'Forward'.length;
    expect(truncated?.message).toBe(`unmarshal request error: proto: ttrpc.Request: field payload (3) at byte ${payloadAt}: unexpected EOF`);
    // Method names must be UTF-8 (gogo's reflective decoder, which ttrpc uses for the envelope, checks that too).
    const badMethod = Buffer.concat([Buffer.from([0x0a, Events.length]), Buffer.from(Events), Buffer.from([0x12, 0x02, 0xc3, 0x28])]);
    expect((await peer.send(3, badMethod))?.message).toMatch(/field method \(2\) at byte \d+: string field contains invalid UTF-8/);
    expect(forwarded).toEqual([]);
  });
});

describe('ttrpc client with a malformed response', () => {
  it('rejects with Internal naming the response type instead of returning part of it', async () => {
    const server: Server = createServer((s) => {
      const decoder = new FrameDecoder();
      s.on('data', (chunk: Buffer) => {
        for (const f of decoder.push(chunk)) {
          if (f.kind !== 'frame') continue;
          // StateResponse{id: "abc"} cut short: gogo (and now we) refuse it; protobufjs alone decoded id "ab".
          const body = messageCodec('ttrpc.Response').encode({ payload: Buffer.from([0x0a, 0x03, 0x61, 0x62]) });
          s.write(encodeFrame(f.header.streamId, FrameType.Response, body));
        }
      });
    });
    await new Promise<void>((resolve) => server.listen(sock, resolve));
    cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const client = await TtrpcClient.connect(sock);
    cleanups.push(() => client.close());
    await expect(client.call(ServiceNames.ShimTask, 'State', { id: 'abc' })).rejects.toMatchObject({
      code: StatusCode.INTERNAL,
      message: 'ttrpc: failed to decode containerd.task.v2.StateResponse: proto: containerd.task.v2.StateResponse: field id (1) at byte 0: unexpected EOF',
    });
  });
});
