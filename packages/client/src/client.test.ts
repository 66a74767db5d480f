import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  Metadata,
  Server,
  ServerCredentials,
  status,
  type ServerDuplexStream,
  type ServerUnaryCall,
  type ServerWritableStream,
  type ServiceDefinition,
  type UntypedServiceImplementation,
  type sendUnaryData,
} from '@grpc/grpc-js';
import { serviceDefinition, ServiceNames, type containerd } from '@berth/api';
import { errdefOf, isCancelled, isDeadlineExceeded, isNotFound, isUnavailable, wireMessageOf } from '@berth/core';
import { BerthClient } from './client.js';
import { Lockstep } from './lockstep.js';

type WriteReq = containerd.services.content.v1.WriteContentRequest;
type WriteResInput = containerd.services.content.v1.WriteContentResponseInput;

/** What the test server saw, for assertions. */
const seen: { metadata: Record<string, unknown>[]; cancelled: number } = { metadata: [], cancelled: 0 };

function record(md: Metadata): void {
  seen.metadata.push(md.getMap());
}

function failure(code: status, details: string, errdef?: string) {
  const metadata = new Metadata();
  if (errdef) metadata.set('berth-errdef', errdef);
  return { code, details, metadata };
}

const namespacesImpl: UntypedServiceImplementation = {
  Get(call: ServerUnaryCall<{ name: string }, unknown>, cb: sendUnaryData<unknown>) {
    record(call.metadata);
    if (call.request.name === 'missing') return cb(failure(status.NOT_FOUND, `namespace "missing": not found`));
    if (call.request.name === 'busy') return cb(failure(status.FAILED_PRECONDITION, 'namespace "busy" is locked: conflict', 'conflict'));
    if (call.request.name === 'slow') return void setTimeout(() => cb(null, { namespace: { name: 'slow' } }), 2_000);
    cb(null, { namespace: { name: call.request.name, labels: { a: 'b' } } });
  },
  List(_call: ServerUnaryCall<unknown, unknown>, cb: sendUnaryData<unknown>) {
    cb(null, { namespaces: [] });
  },
  Create: (_c: unknown, cb: sendUnaryData<unknown>) => cb(failure(status.UNIMPLEMENTED, 'not implemented')),
  Update: (_c: unknown, cb: sendUnaryData<unknown>) => cb(failure(status.UNIMPLEMENTED, 'not implemented')),
  Delete: (_c: unknown, cb: sendUnaryData<unknown>) => cb(failure(status.UNIMPLEMENTED, 'not implemented')),
};

const contentImpl: UntypedServiceImplementation = {
  List(call: ServerWritableStream<{ filters: string[] }, unknown>) {
    record(call.metadata);
    const count = call.request.filters.includes('endless') ? Infinity : 3;
    call.on('cancelled', () => seen.cancelled++);
    let i = 0;
    const tick = () => {
      if (call.cancelled) return;
      if (i >= count) return call.end();
      if (call.request.filters.includes('fail') && i === 2) return call.emit('error', failure(status.DATA_LOSS, 'blob vanished', 'data-loss'));
      call.write({ info: [{ digest: `sha256:${i}`, size: i }] });
      i++;
      setImmediate(tick);
    };
    tick();
  },
  Write(call: ServerDuplexStream<WriteReq, WriteResInput>) {
    record(call.metadata);
    let offset = 0;
    call.on('data', (req: WriteReq) => {
      if (req.action === 'WRITE') {
        if (req.offset !== offset) {
          call.emit('error', failure(status.OUT_OF_RANGE, `write @${req.offset} must occur at current offset ${offset}`));
          return;
        }
        offset += req.data.length;
      }
      call.write({ action: req.action, offset, total: req.total });
      if (req.action === 'COMMIT') call.end();
    });
    call.on('end', () => call.end());
  },
};

let dir: string;
let server: Server;
let address: string;
const clients: BerthClient[] = [];

function client(namespace = 'default', timeoutMs?: number): BerthClient {
  const c = new BerthClient({ address, namespace, timeoutMs });
  clients.push(c);
  return c;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'berth-client-'));
  address = join(dir, 'grpc.sock');
  server = new Server();
  server.addService(serviceDefinition(ServiceNames.Namespaces) as unknown as ServiceDefinition, namespacesImpl);
  server.addService(serviceDefinition(ServiceNames.Content) as unknown as ServiceDefinition, contentImpl);
  await new Promise<void>((resolve, reject) =>
    server.bindAsync(`unix:${address}`, ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve())),
  );
});

afterEach(() => {
  for (const c of clients.splice(0)) c.close();
  seen.metadata.length = 0;
  seen.cancelled = 0;
});

afterAll(async () => {
  await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
  await rm(dir, { recursive: true, force: true });
});

describe('BerthClient unary calls', () => {
  it('decodes responses and sends the namespace, per-call overrides and the lease', async () => {
    const c = client('ns1');
    const res = await c.namespaces.Get({ name: 'x' });
    expect(res.namespace).toEqual({ name: 'x', labels: { a: 'b' } });
    await c.namespaces.Get({ name: 'y' }, { namespace: 'other', lease: 'l1', metadata: { 'X-Extra': ['1', '2'] } });
    expect(seen.metadata[0]?.['containerd-namespace']).toBe('ns1');
    expect(seen.metadata[0]?.['containerd-lease']).toBeUndefined();
    expect(seen.metadata[1]?.['containerd-namespace']).toBe('other');
    expect(seen.metadata[1]?.['containerd-lease']).toBe('l1');
    expect(seen.metadata[1]?.['x-extra']).toBe('1, 2');
  });

  it('sends the client lease unless a call overrides it', async () => {
    const c = new BerthClient({ address, namespace: 'n', lease: 'base' });
    clients.push(c);
    await c.namespaces.Get({ name: 'a' });
    await c.namespaces.Get({ name: 'b' }, { lease: 'other' });
    await c.namespaces.Get({ name: 'c' }, { lease: '' });
    expect(seen.metadata.map((m) => m['containerd-lease'])).toEqual(['base', 'other', undefined]);
  });

  it('sends no namespace when none is set', async () => {
    const c = client('');
    await c.namespaces.Get({ name: 'z' });
    expect(seen.metadata[0]?.['containerd-namespace']).toBeUndefined();
  });

  it('maps errors to errdef classes, by trailer or by code', async () => {
    const c = client();
    const notFound = await c.namespaces.Get({ name: 'missing' }).catch((e: unknown) => e);
    expect(isNotFound(notFound)).toBe(true);
    expect(wireMessageOf(notFound)).toBe('namespace "missing": not found');
    const conflict = await c.namespaces.Get({ name: 'busy' }).catch((e: unknown) => e);
    expect(errdefOf(conflict)).toBe('conflict');
    expect(wireMessageOf(conflict)).toBe('namespace "busy" is locked: conflict');
    const unimplemented = await c.namespaces.Create({ namespace: { name: 'a' } }).catch((e: unknown) => e);
    expect(errdefOf(unimplemented)).toBe('not-implemented');
  });

  it('cancels on abort and honours deadlines', async () => {
    const c = client('default', 100);
    const timedOut = await c.namespaces.Get({ name: 'slow' }).catch((e: unknown) => e);
    expect(isDeadlineExceeded(timedOut)).toBe(true);
    const controller = new AbortController();
    const pending = client().namespaces.Get({ name: 'slow' }, { signal: controller.signal }).catch((e: unknown) => e);
    setTimeout(() => controller.abort(), 50);
    expect(isCancelled(await pending)).toBe(true);
    const late = await client().namespaces.Get({ name: 'slow' }, { deadline: Date.now() + 50 }).catch((e: unknown) => e);
    expect(isDeadlineExceeded(late)).toBe(true);
  });

  it('reports a missing socket as unavailable', async () => {
    const c = new BerthClient({ address: join(dir, 'nobody.sock') });
    clients.push(c);
    const err = await c.namespaces.List({}).catch((e: unknown) => e);
    expect(isUnavailable(err)).toBe(true);
  });
});

describe('BerthClient server streams', () => {
  it('yields every message', async () => {
    const digests: string[] = [];
    for await (const msg of client().content.List({})) digests.push(...msg.info.map((i) => i.digest));
    expect(digests).toEqual(['sha256:0', 'sha256:1', 'sha256:2']);
  });

  it('cancels the call when the consumer stops early', async () => {
    let n = 0;
    for await (const _ of client().content.List({ filters: ['endless'] })) if (++n === 5) break;
    await expect.poll(() => seen.cancelled).toBe(1);
  });

  it('maps an error in the middle of the stream', async () => {
    const got: number[] = [];
    const err = await (async () => {
      for await (const msg of client().content.List({ filters: ['fail'] })) got.push(msg.info[0]?.size ?? -1);
    })().catch((e: unknown) => e);
    expect(got).toEqual([0, 1]);
    expect(errdefOf(err)).toBe('data-loss');
  });

  it('ends with a cancelled error when aborted', async () => {
    const controller = new AbortController();
    let n = 0;
    const err = await (async () => {
      for await (const _ of client().content.List({ filters: ['endless'] }, { signal: controller.signal })) if (++n === 3) controller.abort();
    })().catch((e: unknown) => e);
    expect(isCancelled(err)).toBe(true);
  });
});

describe('BerthClient bidirectional streams', () => {
  it('drives a lockstep exchange', async () => {
    const c = client('ns2');
    const w = new Lockstep((reqs: AsyncIterable<containerd.services.content.v1.WriteContentRequestInput>) => c.content.Write(reqs, { lease: 'l2' }));
    expect((await w.send({ action: 'STAT', ref: 'r', total: 5 })).total).toBe(5);
    expect((await w.send({ action: 'WRITE', data: Buffer.from('hel') })).offset).toBe(3);
    expect((await w.send({ action: 'WRITE', offset: 3, data: Buffer.from('lo') })).offset).toBe(5);
    expect((await w.send({ action: 'COMMIT', offset: 5 })).action).toBe('COMMIT');
    await w.close();
    expect(seen.metadata[0]?.['containerd-namespace']).toBe('ns2');
    expect(seen.metadata[0]?.['containerd-lease']).toBe('l2');
  });

  it('maps a server error', async () => {
    const w = new Lockstep((reqs: AsyncIterable<containerd.services.content.v1.WriteContentRequestInput>) => client().content.Write(reqs));
    await w.send({ action: 'STAT', ref: 'r' });
    const err = await w.send({ action: 'WRITE', offset: 7, data: Buffer.from('x') }).catch((e: unknown) => e);
    expect(errdefOf(err)).toBe('out-of-range');
    expect((err as Error).message).toBe('write @7 must occur at current offset 0');
  });

  it('streams a whole iterable and surfaces an error of the input', async () => {
    async function* requests() {
      yield { action: 'STAT' as const, ref: 'r' };
      yield { action: 'WRITE' as const, data: Buffer.from('abc') };
      throw new Error('stdin broke');
    }
    const offsets: number[] = [];
    const err = await (async () => {
      for await (const res of client().content.Write(requests())) offsets.push(res.offset);
    })().catch((e: unknown) => e);
    expect((err as Error).message).toBe('stdin broke');
    expect(offsets.length).toBeLessThanOrEqual(2);
  });

  it('completes when the input ends after COMMIT', async () => {
    async function* requests() {
      yield { action: 'WRITE' as const, data: Buffer.from('abcd') };
      yield { action: 'COMMIT' as const, offset: 4 };
    }
    const actions: string[] = [];
    for await (const res of client().content.Write(requests())) actions.push(`${res.action}@${res.offset}`);
    expect(actions).toEqual(['WRITE@4', 'COMMIT@4']);
  });
});
