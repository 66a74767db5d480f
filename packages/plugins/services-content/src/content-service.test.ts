import { randomBytes } from 'node:crypto';
import { messageCodec, ServiceNames, type containerd } from '@berth/api';
import {
  errdefOf,
  eventsToken,
  exchangePlugin,
  leasesToken,
  rpcServicesPoint,
  type Envelope,
  type LeaseManager,
  type RpcContext,
} from '@berth/core';
import { createTestHost, failureOf as failure, rpcContext, type TestHost } from '@berth/core/testing';
import contentLocalPlugin from '@berth/plugin-content-local';
import metadataLmdbPlugin from '@berth/plugin-metadata-lmdb';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LIST_BATCH_COUNT, READ_CHUNK_SIZE } from './content-service.js';
import { contentServicePlugin } from './plugin.js';
import { sha256Digest as sha256 } from '@berth/core';

type Handlers = containerd.services.content.v1.ContentHandlers;
type WriteRequestInput = containerd.services.content.v1.WriteContentRequestInput;
type WriteRequest = containerd.services.content.v1.WriteContentRequest;
type WriteResponse = containerd.services.content.v1.WriteContentResponseInput;

const NS = 'testing';
const EMPTY_DIGEST = 'sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
const writeCodec = messageCodec('containerd.services.content.v1.WriteContentRequest');
const updateCodec = messageCodec('containerd.services.content.v1.UpdateRequest');
const update = (input: containerd.services.content.v1.UpdateRequestInput) => updateCodec.decode(updateCodec.encode(input));


/** A request exactly as the daemon hands it over: encoded and decoded through the real codec. */
function wire(input: WriteRequestInput): WriteRequest {
  return writeCodec.decode(writeCodec.encode(input));
}

function rpc(namespace: string | undefined = NS, signal = new AbortController().signal, lease?: string): RpcContext {
  return rpcContext({ namespace, signal, lease });
}

async function collect<T>(stream: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of stream) out.push(item);
  return out;
}

/** Drives one Write call request by request, as a client does: send, then wait for the answer. */
class WriteCall {
  private readonly queue: Array<(value: IteratorResult<WriteRequest>) => void> = [];
  private readonly pending: IteratorResult<WriteRequest>[] = [];
  private readonly responses: AsyncIterator<WriteResponse>;
  pulled = 0;

  constructor(handlers: Handlers, ctx: RpcContext) {
    const requests: AsyncIterable<WriteRequest> = {
      [Symbol.asyncIterator]: () => ({
        next: () => {
          this.pulled++;
          const ready = this.pending.shift();
          if (ready) return Promise.resolve(ready);
          return new Promise((resolve) => this.queue.push(resolve));
        },
      }),
    };
    this.responses = handlers.Write(requests, ctx)[Symbol.asyncIterator]();
  }

  private push(result: IteratorResult<WriteRequest>): void {
    const waiter = this.queue.shift();
    if (waiter) waiter(result);
    else this.pending.push(result);
  }

  async send(input: WriteRequestInput): Promise<WriteResponse> {
    this.push({ done: false, value: wire(input) });
    const next = await this.responses.next();
    if (next.done) throw new Error('write stream ended early');
    return next.value;
  }

  /** Half-closes the request stream; resolves when the call ends. */
  async end(): Promise<void> {
    this.push({ done: true, value: undefined });
    await this.finished();
  }

  /** Resolves when the call ends by itself. */
  async finished(): Promise<void> {
    const next = await this.responses.next();
    expect(next.done).toBe(true);
  }
}

describe('ContentService', () => {
  let host: TestHost;
  let handlers: Handlers;
  let leases: LeaseManager;

  beforeEach(async () => {
    host = await createTestHost({ plugins: [contentLocalPlugin, metadataLmdbPlugin, exchangePlugin, contentServicePlugin] });
    const impl = [...host.host.all(rpcServicesPoint).values()].flatMap((s) => s.services).find((s) => s.service === ServiceNames.Content);
    handlers = impl!.handlers as unknown as Handlers;
    leases = host.host.get(leasesToken);
  });
  afterEach(async () => {
    await host.close();
  });

  /** Writes a blob the way `ctr content ingest` does. */
  async function ingest(ref: string, data: Buffer, labels?: Record<string, string>): Promise<string> {
    const call = new WriteCall(handlers, rpc());
    await call.send({ action: 'STAT', ref });
    await call.send({ action: 'STAT' });
    let offset = 0;
    for (let i = 0; i < data.length; i += 256 * 1024) {
      const chunk = data.subarray(i, i + 256 * 1024);
      const res = await call.send({ action: 'WRITE', offset, data: chunk });
      offset = Number(res.offset);
    }
    const res = await call.send({ action: 'COMMIT', offset, total: data.length, labels });
    await call.end();
    return String(res.digest);
  }

  describe('Write', () => {
    it('follows ctr content ingest: STAT, STAT, WRITE..., COMMIT, with offsets, totals and the running digest', async () => {
      const data = randomBytes(700_000);
      const call = new WriteCall(handlers, rpc());
      const first = await call.send({ action: 'STAT', ref: 'ingest-1', total: data.length });
      expect(first).toMatchObject({ action: 'STAT', offset: 0, total: data.length, digest: EMPTY_DIGEST });
      expect(first.started_at).toBeTruthy();
      expect(first.updated_at).toBeTruthy();

      const w1 = await call.send({ action: 'WRITE', data: data.subarray(0, 300_000) });
      expect(w1).toMatchObject({ action: 'WRITE', offset: 300_000, digest: sha256(data.subarray(0, 300_000)) });
      const stat = await call.send({ action: 'STAT' });
      expect(stat).toMatchObject({ offset: 300_000, total: data.length, digest: sha256(data.subarray(0, 300_000)) });

      const w2 = await call.send({ action: 'WRITE', offset: 300_000, data: data.subarray(300_000) });
      expect(w2.offset).toBe(data.length);
      const commit = await call.send({ action: 'COMMIT', offset: data.length, expected: sha256(data), labels: { a: 'b' } });
      expect(commit).toMatchObject({ action: 'COMMIT', offset: data.length, digest: sha256(data) });
      await call.end();

      const { info } = await handlers.Info({ digest: sha256(data) }, rpc());
      expect(info).toMatchObject({ digest: sha256(data), size: data.length, labels: { a: 'b' } });
      await expect(handlers.Status({ ref: 'ingest-1' }, rpc())).rejects.toSatisfy((e) => errdefOf(e) === 'not-found');
      const chunks = await collect(handlers.Read({ digest: sha256(data), offset: 0, size: 0 }, rpc()));
      expect(Buffer.concat(chunks.map((c) => Buffer.from(c.data!)))).toEqual(data);
    });

    it('ends the call after COMMIT without reading further requests', async () => {
      const call = new WriteCall(handlers, rpc());
      await call.send({ action: 'STAT', ref: 'one-shot' });
      await call.send({ action: 'COMMIT', data: Buffer.from('abc') });
      const pulled = call.pulled;
      await call.end().catch(() => undefined);
      expect(pulled).toBe(2);
      expect((await handlers.Info({ digest: sha256(Buffer.from('abc')) }, rpc())).info?.size).toBe(3);
    });

    it('takes the next request only after the previous one was written and answered', async () => {
      const call = new WriteCall(handlers, rpc());
      await call.send({ action: 'STAT', ref: 'pace' });
      for (let i = 0; i < 5; i++) {
        await call.send({ action: 'WRITE', offset: i * 1000, data: Buffer.alloc(1000, i) });
        expect(call.pulled).toBe(i + 2);
      }
      await call.end();
    });

    it('answers an action it does not know with an empty message and writes nothing', async () => {
      const call = new WriteCall(handlers, rpc());
      await call.send({ action: 'STAT', ref: 'future-action' });
      const odd = await call.send({ action: 7 as never, data: Buffer.from('ignored') });
      expect(odd.offset ?? 0).toBe(0);
      expect(odd.digest ?? '').toBe('');
      expect((await handlers.Status({ ref: 'future-action' }, rpc())).status).toMatchObject({ offset: 0 });
      await call.end();
    });

    it('requires a ref on the first message', async () => {
      const call = new WriteCall(handlers, rpc());
      expect(await failure(call.send({ action: 'STAT' }))).toEqual({
        errdef: 'invalid-argument',
        message: expect.stringContaining('first message must have a reference'),
      });
    });

    it('fails a write at another offset with OutOfRange and keeps the ingest as it was', async () => {
      const call = new WriteCall(handlers, rpc());
      await call.send({ action: 'STAT', ref: 'gap' });
      await call.send({ action: 'WRITE', data: Buffer.alloc(10, 1) });
      const err = await failure(call.send({ action: 'WRITE', offset: 20, data: Buffer.alloc(10, 2) }));
      expect(err).toEqual({ errdef: 'out-of-range', message: 'write @20 must occur at current offset 10' });
      expect((await handlers.Status({ ref: 'gap' }, rpc())).status).toMatchObject({ ref: 'gap', offset: 10 });
    });

    it('resumes an ingest left open by an earlier call, from its offset', async () => {
      const data = randomBytes(100_000);
      const first = new WriteCall(handlers, rpc());
      await first.send({ action: 'STAT', ref: 'resume', expected: sha256(data), total: data.length });
      await first.send({ action: 'WRITE', data: data.subarray(0, 40_000) });
      await first.end();

      const { statuses } = await handlers.ListStatuses({ filters: [] }, rpc());
      expect(statuses).toEqual([
        expect.objectContaining({ ref: 'resume', offset: 40_000, total: data.length, expected: sha256(data) }),
      ]);

      const second = new WriteCall(handlers, rpc());
      const stat = await second.send({ action: 'STAT', ref: 'resume', expected: sha256(data), total: data.length });
      expect(stat).toMatchObject({ offset: 40_000, digest: sha256(data.subarray(0, 40_000)) });
      await second.send({ action: 'WRITE', offset: 40_000, data: data.subarray(40_000) });
      const commit = await second.send({ action: 'COMMIT', offset: data.length, total: data.length, expected: sha256(data) });
      expect(commit.digest).toBe(sha256(data));
      await second.end();
      expect((await handlers.Info({ digest: sha256(data) }, rpc())).info?.size).toBe(data.length);
    });

    it('starts over when a write comes at offset 0 on an ingest that has bytes', async () => {
      const first = new WriteCall(handlers, rpc());
      await first.send({ action: 'STAT', ref: 'restart' });
      await first.send({ action: 'WRITE', data: Buffer.from('stale bytes') });
      await first.end();

      const second = new WriteCall(handlers, rpc());
      expect((await second.send({ action: 'STAT', ref: 'restart' })).offset).toBe(11);
      const res = await second.send({ action: 'WRITE', offset: 0, data: Buffer.from('fresh') });
      expect(res).toMatchObject({ offset: 5, digest: sha256(Buffer.from('fresh')) });
      await second.send({ action: 'COMMIT', offset: 5 });
      await second.end();
      await expect(handlers.Info({ digest: sha256(Buffer.from('fresh')) }, rpc())).resolves.toBeTruthy();
    });

    it('reports AlreadyExists when the expected blob exists, at open and at commit', async () => {
      const data = Buffer.from('already here');
      await ingest('first', data);

      const atOpen = new WriteCall(handlers, rpc());
      const err = await failure(atOpen.send({ action: 'STAT', ref: 'second', expected: sha256(data) }));
      expect(err.errdef).toBe('already-exists');

      const atCommit = new WriteCall(handlers, rpc());
      await atCommit.send({ action: 'STAT', ref: 'third' });
      await atCommit.send({ action: 'WRITE', data });
      expect((await failure(atCommit.send({ action: 'COMMIT', offset: data.length }))).errdef).toBe('already-exists');
      expect((await handlers.ListStatuses({ filters: [] }, rpc())).statuses).toEqual([]);

      // An expected digest that turns up on a later message and is already there ends the call and the ingest.
      const later = new WriteCall(handlers, rpc());
      await later.send({ action: 'STAT', ref: 'fourth' });
      await later.send({ action: 'WRITE', data: data.subarray(0, 5) });
      const err2 = await failure(later.send({ action: 'WRITE', offset: 5, data: data.subarray(5), expected: sha256(data) }));
      expect(err2).toEqual({ errdef: 'already-exists', message: `blob with expected digest ${sha256(data)} exists` });
      expect((await handlers.ListStatuses({ filters: [] }, rpc())).statuses).toEqual([]);
    });

    it('refuses to commit bytes that do not match the expected digest and keeps no blob', async () => {
      const data = Buffer.from('the real bytes');
      const wrong = sha256(Buffer.from('other bytes'));
      const call = new WriteCall(handlers, rpc());
      await call.send({ action: 'STAT', ref: 'mismatch', expected: wrong });
      await call.send({ action: 'WRITE', data });
      const err = await failure(call.send({ action: 'COMMIT', offset: data.length, expected: wrong }));
      expect(err.errdef).toBe('failed-precondition');
      expect(err.message).toContain(sha256(data));
      for (const digest of [sha256(data), wrong]) {
        expect((await failure(handlers.Info({ digest }, rpc()))).errdef).toBe('not-found');
      }
      await handlers.Abort({ ref: 'mismatch' }, rpc());
      expect((await handlers.ListStatuses({ filters: [] }, rpc())).statuses).toEqual([]);
    });

    it('refuses a commit whose size differs from the total', async () => {
      const call = new WriteCall(handlers, rpc());
      await call.send({ action: 'STAT', ref: 'short', total: 100 });
      await call.send({ action: 'WRITE', data: Buffer.alloc(50) });
      expect((await failure(call.send({ action: 'COMMIT', offset: 50 }))).errdef).toBe('failed-precondition');
    });

    it('releases the ref when the client goes away mid-stream, leaving the ingest resumable', async () => {
      const controller = new AbortController();
      const call = new WriteCall(handlers, rpc(NS, controller.signal));
      await call.send({ action: 'STAT', ref: 'vanish' });
      await call.send({ action: 'WRITE', data: Buffer.alloc(4096, 7) });
      // The session now waits for a request that never comes, until the call is cancelled.
      const ending = failure(call.finished());
      controller.abort();
      expect((await ending).errdef).toBe('cancelled');

      const again = new WriteCall(handlers, rpc());
      expect((await again.send({ action: 'STAT', ref: 'vanish' })).offset).toBe(4096);
      await again.end();
    });

    it('rejects an invalid expected digest', async () => {
      const call = new WriteCall(handlers, rpc());
      expect((await failure(call.send({ action: 'STAT', ref: 'bad', expected: 'sha256:../../etc' }))).errdef).toBe('invalid-argument');
    });

    it('adds the write to the lease named by the call', async () => {
      await leases.create({ namespace: NS }, { id: 'hold' });
      const call = new WriteCall(handlers, rpc(NS, undefined, 'hold'));
      await call.send({ action: 'STAT', ref: 'leased' });
      await call.send({ action: 'COMMIT', data: Buffer.from('leased bytes') });
      await call.end().catch(() => undefined);
      expect(await leases.listResources({ namespace: NS }, 'hold')).toEqual([
        { type: 'content', id: sha256(Buffer.from('leased bytes')) },
      ]);
    });
  });

  describe('Read', () => {
    it('streams 1 MiB chunks with their offsets, from an offset and for a size', async () => {
      const data = randomBytes(2 * READ_CHUNK_SIZE + 12345);
      const digest = await ingest('big', data);

      const all = await collect(handlers.Read({ digest, offset: 0, size: 0 }, rpc()));
      expect(all.map((c) => [c.offset, c.data!.length])).toEqual([
        [0, READ_CHUNK_SIZE],
        [READ_CHUNK_SIZE, READ_CHUNK_SIZE],
        [2 * READ_CHUNK_SIZE, 12345],
      ]);

      const part = await collect(handlers.Read({ digest, offset: 1000, size: 5000 }, rpc()));
      expect(Buffer.concat(part.map((c) => Buffer.from(c.data!)))).toEqual(data.subarray(1000, 6000));

      // A size past the end reads to the end, as containerd.
      const tail = await collect(handlers.Read({ digest, offset: data.length - 10, size: 1000 }, rpc()));
      expect(Buffer.concat(tail.map((c) => Buffer.from(c.data!)))).toEqual(data.subarray(data.length - 10));
      expect(await collect(handlers.Read({ digest, offset: data.length, size: 0 }, rpc()))).toEqual([]);
    });

    it('fails with OutOfRange past the end and NotFound for an unknown blob', async () => {
      const digest = await ingest('small', Buffer.from('0123456789'));
      const err = await failure(collect(handlers.Read({ digest, offset: 11, size: 0 }, rpc())));
      expect(err).toEqual({ errdef: 'out-of-range', message: 'read past object length 10 bytes' });
      expect((await failure(collect(handlers.Read({ digest: sha256(Buffer.from('x')), offset: 0, size: 0 }, rpc())))).errdef).toBe('not-found');
    });
  });

  describe('List, Update, Delete', () => {
    it('sends many blobs per message, in batches', async () => {
      const count = LIST_BATCH_COUNT + 7;
      const digests = new Set<string>();
      for (let i = 0; i < count; i++) digests.add(await ingest(`blob-${i}`, Buffer.from(`blob number ${i}`)));
      const batches = await collect(handlers.List({ filters: [] }, rpc()));
      expect(batches.map((b) => b.info!.length)).toEqual([LIST_BATCH_COUNT, 7]);
      expect(new Set(batches.flatMap((b) => b.info!.map((i) => i.digest)))).toEqual(digests);
    });

    it('filters the list and sees only the namespace of the call', async () => {
      const a = await ingest('a', Buffer.from('aaa'), { kind: 'x' });
      await ingest('b', Buffer.from('bbb'), { kind: 'y' });
      const batches = await collect(handlers.List({ filters: ['labels.kind==x'] }, rpc()));
      expect(batches.flatMap((b) => b.info!.map((i) => i.digest))).toEqual([a]);
      expect(await collect(handlers.List({ filters: [] }, rpc('elsewhere')))).toEqual([]);
    });

    it('updates labels by field path, replaces them without one, and refuses other paths', async () => {
      const digest = await ingest('labelled', Buffer.from('labels'), { keep: '1', drop: '2' });
      const set = await handlers.Update(update({ info: { digest, labels: { added: 'yes' } }, update_mask: { paths: ['labels.added', 'labels.drop'] } }), rpc());
      expect(set.info?.labels).toEqual({ keep: '1', added: 'yes' });

      const err = await failure(handlers.Update(update({ info: { digest, size: 1 }, update_mask: { paths: ['size'] } }), rpc()));
      expect(err.errdef).toBe('invalid-argument');
      expect(err.message).toContain('cannot update "size" field');

      const replaced = await handlers.Update(update({ info: { digest, labels: { only: 'this' } } }), rpc());
      expect(replaced.info?.labels).toEqual({ only: 'this' });
      expect((await handlers.Info({ digest }, rpc())).info?.labels).toEqual({ only: 'this' });
    });

    it('deletes a blob and publishes /content/delete in the namespace', async () => {
      const digest = await ingest('doomed', Buffer.from('doomed'));
      const exchange = host.host.get(eventsToken);
      const controller = new AbortController();
      const received: Envelope[] = [];
      const subscription = (async () => {
        for await (const envelope of exchange.subscribe(['topic=="/content/delete"'], controller.signal)) {
          received.push(envelope);
          controller.abort();
        }
      })().catch(() => undefined);
      await new Promise((r) => setTimeout(r, 10));

      await handlers.Delete({ digest }, rpc());
      await subscription;
      expect(received).toHaveLength(1);
      expect(received[0]).toMatchObject({ namespace: NS, topic: '/content/delete', fields: { digest } });
      expect(received[0]!.event.typeUrl).toBe('containerd.events.ContentDelete');
      expect((await failure(handlers.Info({ digest }, rpc()))).errdef).toBe('not-found');
      expect((await failure(handlers.Delete({ digest }, rpc()))).errdef).toBe('not-found');
    });
  });

  describe('requests the store must never see', () => {
    const invalid = ['sha256:../../x', `sha256:${'a'.repeat(63)}`, `md5:${'a'.repeat(32)}`, `sha256:${'A'.repeat(64)}`, '', 'sha256:'];

    it.each(invalid)('refuses digest %j with InvalidArgument in Info, Read, Delete and Update', async (digest) => {
      expect((await failure(handlers.Info({ digest }, rpc()))).errdef).toBe('invalid-argument');
      expect((await failure(collect(handlers.Read({ digest, offset: 0, size: 0 }, rpc())))).errdef).toBe('invalid-argument');
      expect((await failure(handlers.Delete({ digest }, rpc()))).errdef).toBe('invalid-argument');
      expect((await failure(handlers.Update(update({ info: { digest } }), rpc()))).errdef).toBe(
        'invalid-argument',
      );
    });

    it('requires a namespace', async () => {
      expect((await failure(handlers.Info({ digest: EMPTY_DIGEST }, rpc('')))).errdef).toBe('failed-precondition');
      expect((await failure(handlers.ListStatuses({ filters: [] }, rpc('')))).errdef).toBe('failed-precondition');
      const call = new WriteCall(handlers, rpc(''));
      expect((await failure(call.send({ action: 'STAT', ref: 'x' }))).errdef).toBe('failed-precondition');
    });

    it('answers Status for an unknown ref with NotFound and Abort likewise', async () => {
      expect((await failure(handlers.Status({ ref: 'nothing' }, rpc()))).errdef).toBe('not-found');
      expect((await failure(handlers.Abort({ ref: 'nothing' }, rpc()))).errdef).toBe('not-found');
    });
  });
});
