// bindService against undecodable requests, over a real grpc-js server and client on a unix socket: raw bytes go
// out through pass-through serializers, so the client never re-encodes what the test means to send.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, credentials, Metadata, Server, ServerCredentials, status, type ServiceError } from '@grpc/grpc-js';
import { implementService, messageCodec, serviceDefinition, ServiceNames, type Services } from '@berth/api';
import { createLogger } from '@berth/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { bindService } from './bind.js';

const raw = (b: Buffer) => b;

/** An implementation and the definition the daemon's catalog would resolve for it. */
function bound<N extends keyof Services>(service: N, handlers: Services[N]['handlers']) {
  return [implementService(service, handlers), serviceDefinition(service)] as const;
}

describe('bindService with requests that do not decode', () => {
  let dir: string;
  let server: Server;
  let client: Client;
  let handled: string[];
  let observed: { method: string; code: number }[];
  let logLines: string[];

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'berth-bind-'));
    handled = [];
    observed = [];
    logLines = [];
    server = new Server();
    const log = createLogger({ level: 'debug', write: (line) => logLines.push(line) });
    const observe = (_service: string, method: string) => ({
      started: () => {},
      received: () => {},
      sent: () => {},
      handled: (code: number) => observed.push({ method, code }),
    });
    bindService(
      server,
      ...bound(ServiceNames.Leases, {
        Create: async (req) => {
          handled.push(`Create ${req.id}`);
          return { lease: { id: req.id, labels: {}, created_at: null } };
        },
        Delete: async (req) => {
          handled.push(`Delete ${req.id}`);
        },
        List: async () => ({ leases: [] }),
        AddResource: async () => undefined,
        DeleteResource: async () => undefined,
        ListResources: async () => ({ resources: [] }),
      }),
      log,
      observe,
    );
    bindService(
      server,
      ...bound(ServiceNames.Events, {
        Publish: async () => undefined,
        Forward: async () => undefined,
        async *Subscribe(req) {
          handled.push(`Subscribe ${req.filters.join(',')}`);
          yield { timestamp: { seconds: 1 }, namespace: 'default', topic: '/x', event: null };
        },
      }),
      log,
      observe,
    );
    bindService(
      server,
      ...bound(ServiceNames.Content, {
        Info: async () => ({ info: null }),
        Update: async () => ({ info: null }),
        List: async function* () {},
        Delete: async () => undefined,
        Read: async function* () {},
        Status: async () => ({ status: null }),
        ListStatuses: async () => ({ statuses: [] }),
        Abort: async () => undefined,
        async *Write(reqs) {
          for await (const req of reqs) {
            handled.push(`Write ${req.ref}`);
            yield { action: req.action, offset: 0, total: 0, digest: '', started_at: null, updated_at: null };
          }
        },
      }),
      log,
      observe,
    );
    const socket = join(dir, 'grpc.sock');
    await new Promise<void>((resolve, reject) =>
      server.bindAsync(`unix://${socket}`, ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve())),
    );
    client = new Client(`unix://${socket}`, credentials.createInsecure());
  });

  afterEach(async () => {
    client.close();
    server.forceShutdown();
    await rm(dir, { recursive: true, force: true });
  });

  const unary = (path: string, bytes: Buffer) =>
    new Promise<{ error?: ServiceError; response?: Buffer }>((resolve) =>
      client.makeUnaryRequest(path, raw, raw, bytes, new Metadata(), (error, response) => resolve(error ? { error } : { response })),
    );

  it('answers a truncated unary request with INTERNAL naming the message and field, without calling the handler', async () => {
    const good = messageCodec('containerd.services.leases.v1.CreateRequest').encode({ id: 'abc' });
    const { error } = await unary('/containerd.services.leases.v1.Leases/Create', good.subarray(0, good.length - 1));
    expect(error?.code).toBe(status.INTERNAL);
    expect(error?.details).toBe(
      'grpc: error unmarshalling request: proto: containerd.services.leases.v1.CreateRequest: field id (1) at byte 0: unexpected EOF',
    );
    expect(handled).toEqual([]);
    expect(observed).toEqual([{ method: 'Create', code: status.INTERNAL }]);
    // Logged for debugging, not as a daemon error.
    expect(logLines.some((l) => l.includes('level=error'))).toBe(false);
    expect(logLines.some((l) => l.includes('level=debug') && l.includes('unexpected EOF'))).toBe(true);

    const ok = await unary('/containerd.services.leases.v1.Leases/Create', good);
    expect(ok.error).toBeUndefined();
    expect(handled).toEqual(['Create abc']);
  });

  it('answers a wrong wire type and an illegal tag on Delete the same way', async () => {
    for (const bytes of [Buffer.from([0x08, 0x01]), Buffer.from([0x00, 0x00]), Buffer.from([0x0a, 0x03, 0x61, 0x62])]) {
      const { error } = await unary('/containerd.services.leases.v1.Leases/Delete', bytes);
      expect(error?.code, bytes.toString('hex')).toBe(status.INTERNAL);
      expect(error?.details).toMatch(/^grpc: error unmarshalling request: proto: containerd\.services\.leases\.v1\.DeleteRequest: /);
    }
    expect(handled).toEqual([]);
  });

  it('answers an undecodable server-streaming request with INTERNAL before the handler runs', async () => {
    const call = client.makeServerStreamRequest('/containerd.services.events.v1.Events/Subscribe', raw, raw, Buffer.from([0x0a, 0x05, 0x61]), new Metadata());
    const error = await new Promise<ServiceError>((resolve) => {
      call.on('data', () => undefined);
      call.on('error', resolve);
    });
    expect(error.code).toBe(status.INTERNAL);
    expect(error.details).toMatch(/^grpc: failed to unmarshal the received message: proto: containerd\.services\.events\.v1\.SubscribeRequest: field filters \(1\)/);
    expect(handled).toEqual([]);
  });

  it('ends a bidi stream with INTERNAL at the first message that does not decode, after serving the good ones', async () => {
    const codec = messageCodec('containerd.services.content.v1.WriteContentRequest');
    const call = client.makeBidiStreamRequest('/containerd.services.content.v1.Content/Write', raw, raw, new Metadata());
    const responses: Buffer[] = [];
    const error = new Promise<ServiceError>((resolve) => {
      call.on('data', (b: Buffer) => responses.push(b));
      call.on('error', resolve);
    });
    call.write(codec.encode({ action: 'STAT', ref: 'good' }));
    call.write(Buffer.from([0x12, 0x09, 0x62, 0x61, 0x64])); // ref claims 9 bytes, 3 follow
    const err = await error;
    expect(err.code).toBe(status.INTERNAL);
    expect(err.details).toBe(
      'grpc: failed to unmarshal the received message: proto: containerd.services.content.v1.WriteContentRequest: field ref (2) at byte 0: unexpected EOF',
    );
    expect(handled).toEqual(['Write good']);
    expect(responses).toHaveLength(1);
  });
});
