import { messageCodec, packAny, type google } from '@berth/api';
import { isPluginManifest, LocalStreamManager, PluginKind, pluginUri, rpcServicesPoint, streamManagerPlugin, streamManagerToken } from '@berth/core';
import { createTestHost, failureOf, rpcContext } from '@berth/core/testing';
import { describe, expect, it } from 'vitest';
import streamingDefault, { streamingServicePlugin } from './index.js';
import { StreamingService } from './streaming-service.js';
import { PACKAGE_VERSION } from './version.js';

/** The requests of a call: pushed by the test, read by the handler. */
class Requests implements AsyncIterable<google.protobuf.Any> {
  private readonly items: google.protobuf.Any[] = [];
  private waiter: ((r: IteratorResult<google.protobuf.Any>) => void) | undefined;
  private ended = false;
  push(item: google.protobuf.Any): void {
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = undefined;
      w({ value: item, done: false });
    } else this.items.push(item);
  }
  end(): void {
    this.ended = true;
    this.waiter?.({ value: undefined, done: true });
  }
  [Symbol.asyncIterator](): AsyncIterator<google.protobuf.Any> {
    return {
      next: () => {
        const item = this.items.shift();
        if (item) return Promise.resolve({ value: item, done: false });
        if (this.ended) return Promise.resolve({ value: undefined, done: true });
        return new Promise((resolve) => (this.waiter = resolve));
      },
    };
  }
}

const init = (id: string) => packAny('containerd.services.streaming.v1.StreamInit', { id }) as google.protobuf.Any;
const progress = (event: string) => packAny('containerd.types.transfer.Progress', { event });

function open(service: StreamingService, requests: Requests, options: { namespace?: string; signal?: AbortSignal } = {}) {
  const handler = service.services[0]!.handlers.Stream!;
  const responses = handler(requests, rpcContext({ namespace: options.namespace ?? 'default', signal: options.signal })) as AsyncIterable<google.protobuf.Any>;
  return responses[Symbol.asyncIterator]();
}

describe('streamingServicePlugin', () => {
  it('is io.containerd.grpc.v1.streaming over the stream manager', async () => {
    expect(isPluginManifest(streamingServicePlugin)).toBe(true);
    expect(streamingDefault).toBe(streamingServicePlugin);
    expect(pluginUri(streamingServicePlugin)).toBe('io.containerd.grpc.v1.streaming');
    expect(streamingServicePlugin.type).toBe(PluginKind.GRPC);
    expect(streamingServicePlugin.version).toBe(PACKAGE_VERSION);
    expect(streamingServicePlugin.provides).toBe(rpcServicesPoint);
    expect(streamingServicePlugin.requires).toEqual({ streams: streamManagerToken });
    const t = await createTestHost({ plugins: [streamManagerPlugin, streamingServicePlugin] });
    try {
      expect(t.host.list().find((r) => r.uri === 'io.containerd.grpc.v1.streaming')?.status).toBe('ok');
    } finally {
      await t.close();
    }
  });
});

describe('StreamingService.Stream', () => {
  it('acknowledges the StreamInit, registers the stream, delivers sends in order and reads the client', async () => {
    const manager = new LocalStreamManager();
    const requests = new Requests();
    const responses = open(new StreamingService(manager), requests, { namespace: 'ns1' });
    requests.push(init('progress-1'));
    const ack = await responses.next();
    expect(ack.value).toMatchObject({ type_url: 'google.protobuf.Empty' });
    expect(ack.value.value.length).toBe(0);

    const stream = manager.get('ns1', 'progress-1');
    const sent = [stream.send({ typeUrl: progress('a').type_url, value: progress('a').value }), stream.send({ typeUrl: progress('b').type_url, value: progress('b').value })];
    const first = await responses.next();
    const second = await responses.next();
    const third = responses.next();
    await Promise.all(sent);
    const decode = (a: google.protobuf.Any) => messageCodec('containerd.types.transfer.Progress').decode(a.value).event;
    expect([decode(first.value), decode(second.value)]).toEqual(['a', 'b']);

    requests.push(progress('from the client'));
    const got = await stream.recv();
    expect(got?.typeUrl).toBe('containerd.types.transfer.Progress');

    stream.close();
    expect((await third).done).toBe(true);
    expect(() => manager.get('ns1', 'progress-1')).toThrow(/not found/);
    expect((await failureOf(stream.send({ typeUrl: 'x', value: Buffer.alloc(0) }))).errdef).toBe('unavailable');
  });

  it('refuses a first message that is not a StreamInit, an empty id and a taken id', async () => {
    const manager = new LocalStreamManager();
    const service = new StreamingService(manager);
    const bad = new Requests();
    bad.push(progress('x') as google.protobuf.Any);
    expect((await failureOf(open(service, bad).next())).message).toMatch(/must be a containerd.services.streaming.v1.StreamInit/);

    const empty = new Requests();
    empty.push(init(''));
    expect((await failureOf(open(service, empty).next())).errdef).toBe('invalid-argument');

    const a = new Requests();
    a.push(init('same'));
    await open(service, a).next();
    const b = new Requests();
    b.push(init('same'));
    expect((await failureOf(open(service, b).next())).errdef).toBe('already-exists');
    expect(manager.size).toBe(1);
  });

  it('unregisters the stream when the client cancels the call', async () => {
    const manager = new LocalStreamManager();
    const controller = new AbortController();
    const requests = new Requests();
    const responses = open(new StreamingService(manager), requests, { signal: controller.signal });
    requests.push(init('gone'));
    await responses.next();
    const pending = responses.next();
    controller.abort();
    expect((await pending).done).toBe(true);
    expect(manager.size).toBe(0);
  });

  it('ends quietly when the client half-closes before any StreamInit', async () => {
    const manager = new LocalStreamManager();
    const requests = new Requests();
    requests.end();
    expect((await open(new StreamingService(manager), requests).next()).done).toBe(true);
    expect(manager.size).toBe(0);
  });
});
