import { messageCodec, packAny, type containerd, type google } from '@berth/api';
import { LocalStreamManager, MetricsRegistry, createLogger, type Descriptor, type OpContext } from '@berth/core';
import { failureOf, rpcContext } from '@berth/core/testing';
import { defaultPlatform, type ImageServices, type PullFunction, type PullOptions, type PullProgress } from '@berth/images';
import { StreamingService } from '@berth/plugin-services-streaming';
import type { Resolver, ResolverOptions } from '@berth/registry';
import { describe, expect, it } from 'vitest';
import { TransferService } from './transfer-service.js';

/** A client's side of a Streaming call: what it sends (push) and what it receives (next). */
class ClientStream {
  private readonly items: google.protobuf.Any[] = [];
  private waiter: ((r: IteratorResult<google.protobuf.Any>) => void) | undefined;
  readonly responses: AsyncIterator<google.protobuf.Any>;

  constructor(streaming: StreamingService, namespace: string, id: string) {
    const requests: AsyncIterable<google.protobuf.Any> = {
      [Symbol.asyncIterator]: () => ({
        next: () => {
          const item = this.items.shift();
          if (item) return Promise.resolve({ value: item, done: false });
          return new Promise((resolve) => (this.waiter = resolve));
        },
      }),
    };
    const handler = streaming.services[0]!.handlers.Stream!;
    this.responses = (handler(requests, rpcContext({ namespace })) as AsyncIterable<google.protobuf.Any>)[Symbol.asyncIterator]();
    this.push(packAny('containerd.services.streaming.v1.StreamInit', { id }) as google.protobuf.Any);
  }

  push(item: google.protobuf.Any): void {
    const w = this.waiter;
    this.waiter = undefined;
    if (w) w({ value: item, done: false });
    else this.items.push(item);
  }

  /** Opens the stream: waits for the server's acknowledgement. */
  async ready(): Promise<void> {
    const ack = await this.responses.next();
    expect(ack.value?.type_url).toBe('google.protobuf.Empty');
  }

  /** Every message until the server closes the stream, decoded as Progress. */
  async drain(): Promise<containerd.types.transfer.Progress[]> {
    const out: containerd.types.transfer.Progress[] = [];
    for (;;) {
      const next = await this.responses.next();
      if (next.done) return out;
      expect(next.value.type_url).toBe('containerd.types.transfer.Progress');
      out.push(messageCodec('containerd.types.transfer.Progress').decode(next.value.value));
    }
  }
}

const LAYER: Descriptor = { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: `sha256:${'a'.repeat(64)}`, size: 1000 };
const CONFIG: Descriptor = { mediaType: 'application/vnd.oci.image.config.v1+json', digest: `sha256:${'c'.repeat(64)}`, size: 10 };

interface Setup {
  readonly service: TransferService;
  readonly streaming: StreamingService;
  readonly manager: LocalStreamManager;
  readonly calls: { options: PullOptions; op: OpContext }[];
  readonly resolverOptions: ResolverOptions[];
  readonly closed: number[];
}

function setup(pullImpl?: (options: PullOptions) => Promise<void>, metrics?: MetricsRegistry): Setup {
  const manager = new LocalStreamManager();
  const calls: Setup['calls'] = [];
  const resolverOptions: ResolverOptions[] = [];
  const closed: number[] = [];
  const pull: PullFunction = async (_services, op, options) => {
    calls.push({ options, op });
    await pullImpl?.(options);
    return {
      image: { name: options.ref, labels: {}, target: CONFIG, createdAt: new Date(), updatedAt: new Date() },
      unpacked: [],
    };
  };
  const createResolver = (options: ResolverOptions): Resolver & { close(): void } => {
    resolverOptions.push(options);
    const n = resolverOptions.length;
    return {
      resolve: async () => Promise.reject(new Error('not used')),
      fetcher: () => ({ fetch: async () => Promise.reject(new Error('no')) }),
      pusher: () => {
        throw new Error('no');
      },
      close: () => closed.push(n),
    };
  };
  const service = new TransferService({
    streams: manager,
    services: {} as ImageServices,
    pull,
    createResolver,
    log: createLogger({ level: 'error', write: () => {} }),
    ...(metrics ? { metrics } : {}),
  });
  return { service, streaming: new StreamingService(manager), manager, calls, resolverOptions, closed };
}

function registry(reference: string, resolver: containerd.types.transfer.RegistryResolverInput = {}): google.protobuf.Any {
  return packAny('containerd.types.transfer.OCIRegistry', { reference, resolver }) as google.protobuf.Any;
}

function imageStore(store: containerd.types.transfer.ImageStoreInput): google.protobuf.Any {
  return packAny('containerd.types.transfer.ImageStore', store) as google.protobuf.Any;
}

function transfer(s: Setup, source: google.protobuf.Any | null, destination: google.protobuf.Any | null, progressStream = '', namespace = 'default') {
  const handler = s.service.services[0]!.handlers.Transfer!;
  return handler({ source, destination, options: { progress_stream: progressStream } }, rpcContext({ namespace })) as Promise<void>;
}

const REF = '127.0.0.1:5000/test/busybox:latest';

describe('TransferService.Transfer', () => {
  it('pulls a registry source into the image store with the options the destination names, progress on the stream', async () => {
    const s = setup(async (options) => {
      const emit = (event: PullProgress) => options.onProgress?.(event);
      emit({ descriptor: LAYER, state: 'waiting', offset: 0 });
      emit({ descriptor: CONFIG, state: 'exists', offset: 10 });
      emit({ descriptor: LAYER, state: 'downloading', offset: 400 });
      await new Promise((r) => setTimeout(r, 5));
      emit({ descriptor: LAYER, state: 'unpacking', offset: 1000 });
      await new Promise((r) => setTimeout(r, 5));
      emit({ descriptor: LAYER, state: 'done', offset: 1000 });
    });
    const client = new ClientStream(s.streaming, 'ns1', 'progress-1');
    await client.ready();
    const received = client.drain();
    await transfer(
      s,
      registry(REF, { default_scheme: 'http', host_dir: '/etc/berth/certs.d', headers: { 'User-Agent': 'test' } }),
      imageStore({
        name: REF,
        labels: { a: 'b' },
        platforms: [{ os: 'linux', architecture: 'arm64', variant: 'v8' }],
        unpacks: [{ platform: { os: 'linux', architecture: 'arm64', variant: 'v8' }, snapshotter: 'native' }],
      }),
      'progress-1',
      'ns1',
    );
    const events = await received;

    expect(s.calls).toHaveLength(1);
    const { options, op } = s.calls[0]!;
    expect(op.namespace).toBe('ns1');
    expect(options).toMatchObject({
      ref: REF,
      platforms: [{ os: 'linux', architecture: 'arm64', variant: 'v8' }],
      unpack: true,
      snapshotter: 'native',
      labels: { a: 'b' },
    });
    expect(s.resolverOptions).toEqual([{ plainHttp: true, hostsDir: '/etc/berth/certs.d', headers: { 'User-Agent': 'test' } }]);

    const lines = events.map((e) => `${e.event}|${e.name}|${e.progress}/${e.total}`);
    expect(lines[0]).toBe(`Pulling from ${REF}||0/0`);
    expect(lines.at(-2)).toBe(`saved|${REF}|0/0`);
    expect(lines.at(-1)).toBe(`Completed pull from ${REF}||0/0`);
    expect(lines).toContain(`already exists|config-${CONFIG.digest}|10/10`);
    expect(lines).toContain(`complete|layer-${LAYER.digest}|1000/1000`);
    const layer = events.filter((e) => e.name === `layer-${LAYER.digest}`);
    expect(layer.at(-1)?.event).toBe('complete');
    expect(layer[0]?.desc).toMatchObject({ media_type: LAYER.mediaType, digest: LAYER.digest, size: 1000 });
    expect(s.manager.size).toBe(0);
    expect(s.closed).toEqual([1]);
  });

  it('fetches every platform when the image store names none, and leaves the layers packed without unpacks', async () => {
    const s = setup();
    await transfer(s, registry(REF), imageStore({ name: REF }));
    expect(s.calls[0]!.options).toMatchObject({ platforms: 'all', unpack: false });
    expect(s.calls[0]!.options.snapshotter).toBeUndefined();
    expect(s.resolverOptions).toEqual([{}]);
  });

  it('unpacks the host platform only when every platform is fetched and the unpack names none', async () => {
    const s = setup();
    await transfer(s, registry(REF), imageStore({ name: REF, unpacks: [{ snapshotter: 'overlayfs' }] }));
    expect(s.calls[0]!.options).toMatchObject({ platforms: 'all', unpack: true, unpackPlatforms: [defaultPlatform()] });
  });

  it('unpacks the fetched platforms when the unpack names none, and the named one when it does', async () => {
    const arm = { os: 'linux', architecture: 'arm64', variant: 'v8' };
    const s = setup();
    await transfer(s, registry(REF), imageStore({ name: REF, platforms: [arm], unpacks: [{ snapshotter: 'native' }] }));
    expect(s.calls[0]!.options.unpackPlatforms).toEqual([arm]);
    await transfer(s, registry(REF), imageStore({ name: REF, unpacks: [{ platform: { os: 'linux', architecture: 'riscv64' }, snapshotter: 'native' }] }));
    expect(s.calls[1]!.options.unpackPlatforms).toEqual([{ os: 'linux', architecture: 'riscv64' }]);
  });

  it('refuses other source and destination pairs with Unimplemented naming both', async () => {
    const s = setup();
    const exportStream = packAny('containerd.types.transfer.ImageExportStream', { stream: 'x' }) as google.protobuf.Any;
    const failure = await failureOf(transfer(s, imageStore({ name: REF }), exportStream));
    expect(failure).toEqual({
      errdef: 'not-implemented',
      message: 'method Transfer not implemented for containerd.types.transfer.ImageStore to containerd.types.transfer.ImageExportStream',
    });
    const unknown = await failureOf(transfer(s, { type_url: 'example.com/Nope', value: Buffer.alloc(0) }, imageStore({})));
    expect(unknown.errdef).toBe('not-implemented');
    expect(unknown.message).toContain('Nope to containerd.types.transfer.ImageStore');
    expect(s.calls).toHaveLength(0);
  });

  it('refuses a missing source, bytes that do not decode, an empty reference and an unknown progress stream', async () => {
    const s = setup();
    expect(await failureOf(transfer(s, null, imageStore({})))).toMatchObject({ errdef: 'invalid-argument', message: 'transfer source is required' });
    const garbage = { type_url: 'containerd.types.transfer.OCIRegistry', value: Buffer.from([0x0a, 0x05, 0x61]) };
    const bad = await failureOf(transfer(s, garbage, imageStore({})));
    expect(bad.errdef).toBe('invalid-argument');
    expect(bad.message).toMatch(/^containerd.types.transfer.OCIRegistry: proto:/);
    expect((await failureOf(transfer(s, registry(''), imageStore({})))).message).toBe('OCIRegistry reference is required');
    expect(await failureOf(transfer(s, registry('busybox'), imageStore({ name: 'busybox' })))).toMatchObject({ errdef: 'invalid-argument', message: expect.stringMatching(/^invalid reference "busybox"/) });
    const missing = await failureOf(transfer(s, registry(REF), imageStore({}), 'no-such-stream'));
    expect(missing.errdef).toBe('not-found');
    expect(missing.message).toMatch(/stream no-such-stream .*not found/);
    expect((await failureOf(transfer(s, registry(REF), imageStore({ name: 'other/name:1' })))).errdef).toBe('not-implemented');
    expect(s.calls).toHaveLength(0);
  });

  it('closes the progress stream when the pull fails, and the failure is the pull\'s', async () => {
    const s = setup(async (options) => {
      options.onProgress?.({ descriptor: LAYER, state: 'waiting', offset: 0 });
      throw Object.assign(new Error('blob sha256:aaa: digest mismatch'), { errdef: 'data-loss' });
    });
    const client = new ClientStream(s.streaming, 'default', 'p');
    await client.ready();
    const received = client.drain();
    expect((await failureOf(transfer(s, registry(REF), imageStore({}), 'p'))).message).toBe('blob sha256:aaa: digest mismatch');
    expect((await received).map((e) => e.event)).toEqual([`Pulling from ${REF}`, 'waiting']);
    expect(s.manager.size).toBe(0);
    expect(s.closed).toEqual([1]);
  });

  it('never holds the pull up for a client that reads slowly: a blob\'s waiting events coalesce to its newest', async () => {
    const s = setup(async (options) => {
      for (let offset = 0; offset <= 100_000; offset += 10) options.onProgress?.({ descriptor: { ...LAYER, size: 100_000 }, state: 'downloading', offset });
      options.onProgress?.({ descriptor: { ...LAYER, size: 100_000 }, state: 'done', offset: 100_000 });
    });
    const client = new ClientStream(s.streaming, 'default', 'slow');
    await client.ready();
    // Nobody reads until the transfer is over.
    const started = Date.now();
    const done = transfer(s, registry(REF), imageStore({}), 'slow');
    const events = await client.drain();
    await done;
    expect(Date.now() - started).toBeLessThan(10_000);
    const layer = events.filter((e) => e.name.startsWith('layer-'));
    expect(layer.length).toBeLessThan(100);
    expect(layer.at(-1)).toMatchObject({ event: 'complete', progress: 100_000 });
  });

  it('goes on with the pull when the progress stream fails', async () => {
    const s = setup(async (options) => {
      options.onProgress?.({ descriptor: LAYER, state: 'waiting', offset: 0 });
      await new Promise((r) => setTimeout(r, 5));
      options.onProgress?.({ descriptor: LAYER, state: 'done', offset: 1000 });
    });
    let sends = 0;
    let closed = false;
    s.manager.register('default', 'broken', {
      send: async () => {
        sends++;
        throw new Error('stream reset');
      },
      recv: async () => undefined,
      close: () => (closed = true),
    });
    await transfer(s, registry(REF), imageStore({}), 'broken');
    expect(s.calls).toHaveLength(1);
    expect(sends).toBe(1);
    expect(closed).toBe(true);
  });

  it('asks the auth stream for credentials and hands them to the resolver', async () => {
    let credentials: unknown;
    const s = setup(async () => {
      credentials = await s.resolverOptions[0]!.credentials!('127.0.0.1:5000');
    });
    const auth = new ClientStream(s.streaming, 'default', 'creds-1');
    await auth.ready();
    const answering = (async () => {
      const request = await auth.responses.next();
      expect(request.value.type_url).toBe('containerd.types.transfer.AuthRequest');
      const decoded = messageCodec('containerd.types.transfer.AuthRequest').decode(request.value.value);
      expect(decoded).toMatchObject({ host: '127.0.0.1:5000', reference: REF });
      auth.push(packAny('containerd.types.transfer.AuthResponse', { authType: 'CREDENTIALS', username: 'alice', secret: 's3cret' }) as google.protobuf.Any);
    })();
    await transfer(s, registry(REF, { auth_stream: 'creds-1' }), imageStore({}));
    await answering;
    expect(credentials).toEqual({ username: 'alice', secret: 's3cret' });
  });

  it('counts pulls by result, the bytes downloaded (not what the store had) and each layer\'s unpack time', async () => {
    const metrics = new MetricsRegistry();
    const other = { ...LAYER, digest: `sha256:${'b'.repeat(64)}`, size: 300 };
    let fail = false;
    const s = setup(async (options) => {
      const emit = (event: PullProgress) => options.onProgress?.(event);
      emit({ descriptor: CONFIG, state: 'exists', offset: 10 });
      emit({ descriptor: LAYER, state: 'downloading', offset: 400 });
      emit({ descriptor: LAYER, state: 'downloading', offset: 900 });
      emit({ descriptor: LAYER, state: 'done', offset: 1000 });
      emit({ descriptor: other, state: 'exists', offset: 300 });
      emit({ descriptor: LAYER, state: 'unpacking', offset: 1000 });
      await new Promise((r) => setTimeout(r, 20));
      emit({ descriptor: LAYER, state: 'done', offset: 1000 });
      emit({ descriptor: other, state: 'unpacking', offset: 300 });
      emit({ descriptor: other, state: 'done', offset: 300 });
      if (fail) throw new Error('registry went away');
    }, metrics);
    await transfer(s, registry(REF), imageStore({ name: REF }));
    fail = true;
    await expect(transfer(s, registry(REF), imageStore({ name: REF }))).rejects.toThrow('registry went away');
    const family = (name: string) => metrics.collect().find((f) => f.name === name)!;
    const value = (name: string, labels: Record<string, string> = {}) =>
      family(name).samples.find((x) => Object.entries(labels).every(([k, v]) => x.labels?.[k] === v) && (x.suffix ?? '') === '')?.value;
    expect(value('berth_pulls_total', { result: 'ok' })).toBe(1);
    expect(value('berth_pulls_total', { result: 'error' })).toBe(1);
    expect(value('berth_pull_bytes_total')).toBe(2000);
    const unpacks = family('berth_pull_layer_unpack_seconds').samples;
    expect(unpacks.find((x) => x.suffix === '_count')?.value).toBe(4);
    expect(unpacks.find((x) => x.suffix === '_sum')!.value).toBeGreaterThanOrEqual(0.03);
    expect(family('berth_pull_duration_seconds').samples.find((x) => x.suffix === '_count')?.value).toBe(2);
  });
});
