import { describe, expect, it } from 'vitest';
import { isFailedPrecondition, isInvalidArgument, isResourceExhausted } from '../errdefs/index.js';
import type { AnyValue, Envelope } from '../kinds/events.js';
import { createLogger } from '../log/logger.js';
import { LocalEventExchange } from './exchange.js';

const event = (typeUrl = 'containerd.events.TaskExit'): AnyValue => ({ typeUrl, value: new Uint8Array([1, 2]) });

/** Reads `n` envelopes, failing if one does not come within `ms` (a second by default). */
async function take(iterable: AsyncIterable<Envelope>, n: number, ms = 1000): Promise<Envelope[]> {
  const out: Envelope[] = [];
  const iterator = iterable[Symbol.asyncIterator]();
  while (out.length < n) {
    const result = await Promise.race([
      iterator.next(),
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`timed out after ${out.length}`)), ms)),
    ]);
    if (result.done) break;
    out.push(result.value);
  }
  return out;
}

/** What the subscription has ready now: delivery is synchronous, so after publish() returns it is all queued. */
async function available(iterable: AsyncIterable<Envelope>): Promise<Envelope[]> {
  const out: Envelope[] = [];
  const iterator = iterable[Symbol.asyncIterator]();
  for (;;) {
    const result = await Promise.race([iterator.next(), new Promise<'none'>((r) => setImmediate(() => r('none')))]);
    if (result === 'none' || result.done) return out;
    out.push(result.value);
  }
}

/** Everything the subscription yields until it ends (the caller aborts it or it ends by itself). */
async function drain(iterable: AsyncIterable<Envelope>): Promise<Envelope[]> {
  const out: Envelope[] = [];
  for await (const envelope of iterable) out.push(envelope);
  return out;
}

const topics = (envelopes: Envelope[]) => envelopes.map((e) => `${e.namespace}${e.topic}`);

describe('LocalEventExchange', () => {
  it('delivers published envelopes, stamped now, to a subscriber registered before iteration starts', async () => {
    const exchange = new LocalEventExchange();
    const abort = new AbortController();
    const sub = exchange.subscribe([], abort.signal);
    const before = Date.now();
    await exchange.publish('default', '/tasks/exit', event(), { container_id: 'c1', exit_status: 0 });
    const [got] = await take(sub, 1);
    expect(got!.namespace).toBe('default');
    expect(got!.topic).toBe('/tasks/exit');
    expect(got!.event.typeUrl).toBe('containerd.events.TaskExit');
    expect(got!.fields).toEqual({ container_id: 'c1', exit_status: 0 });
    expect(got!.timestamp.getTime()).toBeGreaterThanOrEqual(before);
    expect(got!.timestamp.getTime()).toBeLessThanOrEqual(Date.now());
    abort.abort();
  });

  it('filters on topic, namespace and event fields; a list of filters is ORed', async () => {
    const exchange = new LocalEventExchange();
    const abort = new AbortController();
    const byTopic = exchange.subscribe(['topic=="/tasks/exit"'], abort.signal);
    const byNamespace = exchange.subscribe(['namespace==k8s.io'], abort.signal);
    const byContainer = exchange.subscribe(['event.container_id==c2'], abort.signal);
    const byRegexpOr = exchange.subscribe(['topic~=^/containers/', 'namespace==other,topic=="/tasks/start"'], abort.signal);
    const byAnd = exchange.subscribe(['namespace==default,event.container_id==c1,topic~=exit$'], abort.signal);

    await exchange.publish('default', '/tasks/exit', event(), { container_id: 'c1' });
    await exchange.publish('k8s.io', '/tasks/start', event(), { container_id: 'c2' });
    await exchange.publish('other', '/tasks/start', event(), { container_id: 'c3' });
    await exchange.publish('default', '/containers/create', event(), { id: 'c2' });
    await exchange.publish('k8s.io', '/tasks/exit', event()); // no fields: event.* is absent

    expect(topics(await available(byTopic))).toEqual(['default/tasks/exit', 'k8s.io/tasks/exit']);
    expect(topics(await available(byNamespace))).toEqual(['k8s.io/tasks/start', 'k8s.io/tasks/exit']);
    expect(topics(await available(byContainer))).toEqual(['k8s.io/tasks/start']);
    expect(topics(await available(byRegexpOr))).toEqual(['other/tasks/start', 'default/containers/create']);
    expect(topics(await available(byAnd))).toEqual(['default/tasks/exit']);
    abort.abort();
  });

  it('serves concurrent subscribers independently, in publish order', async () => {
    const exchange = new LocalEventExchange();
    const abort = new AbortController();
    const readers = [0, 1, 2].map(() => drain(exchange.subscribe([], abort.signal)));
    const publishers = Array.from({ length: 3 }, (_, p) =>
      (async () => {
        for (let i = 0; i < 20; i++) {
          await exchange.publish(`ns${p}`, `/n/${i}`, event());
          if (i % 5 === 0) await new Promise((r) => setImmediate(r));
        }
      })(),
    );
    await Promise.all(publishers);
    abort.abort();
    const results = await Promise.all(readers);
    for (const got of results) {
      expect(got).toHaveLength(60);
      for (let p = 0; p < 3; p++) {
        expect(got.filter((e) => e.namespace === `ns${p}`).map((e) => e.topic)).toEqual(
          Array.from({ length: 20 }, (_, i) => `/n/${i}`),
        );
      }
    }
    expect(results[0]!.map((e) => e.topic)).toEqual(results[1]!.map((e) => e.topic));
  });

  it('drops what is queued when the signal aborts', async () => {
    const exchange = new LocalEventExchange();
    const abort = new AbortController();
    const sub = exchange.subscribe([], abort.signal);
    await exchange.publish('default', '/a', event());
    abort.abort();
    expect(await drain(sub)).toEqual([]);
  });

  it('ends a waiting iteration when the signal aborts, and stops delivering', async () => {
    const exchange = new LocalEventExchange();
    const abort = new AbortController();
    const sub = exchange.subscribe([], abort.signal);
    const iterator = sub[Symbol.asyncIterator]();
    const pending = iterator.next();
    expect(exchange.subscriberCount).toBe(1);
    abort.abort();
    await expect(pending).resolves.toEqual({ value: undefined, done: true });
    expect(exchange.subscriberCount).toBe(0);
    await exchange.publish('default', '/tasks/exit', event());
    await expect(iterator.next()).resolves.toEqual({ value: undefined, done: true });
  });

  it('returns an empty subscription for an already aborted signal', async () => {
    const exchange = new LocalEventExchange();
    const sub = exchange.subscribe([], AbortSignal.abort());
    await exchange.publish('default', '/tasks/exit', event());
    expect(await drain(sub)).toEqual([]);
    expect(exchange.subscriberCount).toBe(0);
  });

  it('unsubscribes when the consumer breaks out of its loop', async () => {
    const exchange = new LocalEventExchange();
    const sub = exchange.subscribe([], new AbortController().signal);
    await exchange.publish('default', '/a', event());
    await exchange.publish('default', '/b', event());
    for await (const envelope of sub) {
      expect(envelope.topic).toBe('/a');
      break;
    }
    expect(exchange.subscriberCount).toBe(0);
  });

  it('disconnects a slow subscriber without holding up publishers or other subscribers', async () => {
    const lines: string[] = [];
    const exchange = new LocalEventExchange({ queueSize: 3, log: createLogger({ write: (l) => lines.push(l) }) });
    const abort = new AbortController();
    const slow = exchange.subscribe([], abort.signal);
    const fast = exchange.subscribe([], abort.signal);
    const fastRead = take(fast, 10);
    for (let i = 0; i < 10; i++) {
      await exchange.publish('default', `/n/${i}`, event());
      await new Promise((r) => setImmediate(r)); // let the fast reader keep up
    }
    expect((await fastRead).map((e) => e.topic)).toEqual(Array.from({ length: 10 }, (_, i) => `/n/${i}`));
    expect(exchange.subscriberCount).toBe(1);
    expect(lines.filter((l) => l.includes('level=warn'))).toHaveLength(1);
    expect(lines[0]).toMatch(/event subscriber too slow/);

    // The slow one gets what it had queued, then an error instead of a silent gap.
    const got: string[] = [];
    let failure: unknown;
    try {
      for await (const envelope of slow) got.push(envelope.topic);
    } catch (err) {
      failure = err;
    }
    expect(got).toEqual(['/n/0', '/n/1', '/n/2']);
    expect(isResourceExhausted(failure)).toBe(true);
    abort.abort();
  });

  it('matches filters per subscriber, in order, without holding up the publisher', { timeout: 60_000 }, async () => {
    const exchange = new LocalEventExchange();
    const abort = new AbortController();
    // Each envelope costs this subscriber's filter a worker-thread match (~300 instructions x 1000 characters).
    const costly = exchange.subscribe(['event.k~="(?:a?){100}a{100}"'], abort.signal);
    const plain = exchange.subscribe(['topic~="^/n/"'], abort.signal);
    for (let i = 0; i < 5; i++) {
      await exchange.publish('default', `/n/${i}`, event(), { k: i % 2 === 0 ? 'a'.repeat(1000) : 'b'.repeat(1000) });
    }
    expect((await available(plain)).map((e) => e.topic)).toEqual(['/n/0', '/n/1', '/n/2', '/n/3', '/n/4']);
    // The first of these starts the worker thread, which a loaded machine can make slow.
    expect((await take(costly, 3, 20_000)).map((e) => e.topic)).toEqual(['/n/0', '/n/2', '/n/4']);
    abort.abort();
  });

  it('validates what is published', async () => {
    const exchange = new LocalEventExchange();
    const sub = exchange.subscribe([], AbortSignal.timeout(200));
    const err = await exchange.publish('', '/tasks/exit', event()).catch((e: unknown) => e);
    expect(isFailedPrecondition(err)).toBe(true);
    expect((err as Error).message).toBe('failed publishing event: namespace is required');

    const badNs = await exchange.publish('bad ns', '/tasks/exit', event()).catch((e: unknown) => e);
    expect(isInvalidArgument(badNs)).toBe(true);
    expect((badNs as Error).message).toMatch(/^failed publishing event: namespace validation: identifier "bad ns" must match/);

    const badTopic = await exchange.publish('default', 'tasks/exit', event()).catch((e: unknown) => e);
    expect(isInvalidArgument(badTopic)).toBe(true);
    expect((badTopic as Error).message).toBe(`envelope topic "tasks/exit": must start with '/'`);
    expect(await drain(sub)).toEqual([]);
  });

  it('forwards valid envelopes unchanged and rejects invalid ones', async () => {
    const exchange = new LocalEventExchange();
    const abort = new AbortController();
    const sub = exchange.subscribe(['event.container_id==c9'], abort.signal);
    const envelope: Envelope = {
      timestamp: new Date('2024-05-06T07:08:09.123Z'),
      namespace: 'default',
      topic: '/tasks/start',
      event: event('containerd.events.TaskStart'),
      fields: { container_id: 'c9', pid: 42 },
    };
    await exchange.forward(envelope);
    const [got] = await take(sub, 1);
    expect(got).toBe(envelope);

    const rejects = async (e: Envelope, message: RegExp) => {
      const err = await exchange.forward(e).catch((x: unknown) => x);
      expect(isInvalidArgument(err)).toBe(true);
      expect((err as Error).message).toMatch(message);
    };
    await rejects({ ...envelope, namespace: '' }, /^event envelope has invalid namespace: identifier must not be empty$/);
    await rejects({ ...envelope, topic: '/tasks//start' }, /^envelope topic "\/tasks\/\/start": failed validation on component ""/);
    await rejects({ ...envelope, timestamp: new Date(0) }, /^timestamp must be set on forwarded event$/);
    await rejects({ ...envelope, timestamp: new Date(Number.NaN) }, /^timestamp must be set/);
    await rejects({ ...envelope, timestamp: new Date('0001-01-01T00:00:00Z') }, /^timestamp must be set/);
    abort.abort();
    expect(await drain(sub)).toEqual([]);
  });

  it('rejects malformed subscription filters at once', () => {
    const exchange = new LocalEventExchange();
    let err: unknown;
    try {
      exchange.subscribe(['topic=='], new AbortController().signal);
    } catch (e) {
      err = e;
    }
    expect(isInvalidArgument(err)).toBe(true);
    expect((err as Error).message).toBe(
      'failed parsing subscription filters: filters: parse error: [topic==]: expected value or quoted',
    );
    expect(exchange.subscriberCount).toBe(0);
  });

  it('ends every subscription on close()', async () => {
    const exchange = new LocalEventExchange();
    const signal = new AbortController().signal;
    const reading = drain(exchange.subscribe([], signal));
    const idle = exchange.subscribe(['topic=="/x"'], signal);
    await exchange.publish('default', '/x', event());
    exchange.close();
    expect(topics(await reading)).toEqual(['default/x']);
    expect(await drain(idle)).toEqual([]); // what was queued but unread is dropped, as on abort
    expect(exchange.subscriberCount).toBe(0);
  });
});

describe('LocalEventExchange metrics', () => {
  it('counts published and forwarded envelopes, offers, live subscribers and slow subscribers disconnected', async () => {
    const { MetricsRegistry } = await import('../metrics/metrics.js');
    const registry = new MetricsRegistry();
    const exchange = new LocalEventExchange({ queueSize: 2, metrics: registry });
    const value = (name: string, labels: Record<string, string> = {}) =>
      registry.collect().find((f) => f.name === name)?.samples.find((s) => Object.entries(labels).every(([k, v]) => s.labels?.[k] === v))?.value;
    expect(value('berth_events_subscribers')).toBe(0);
    const fast = new AbortController();
    const slow = new AbortController();
    const reader = exchange.subscribe([], fast.signal);
    exchange.subscribe([], slow.signal); // never read: its queue of 2 fills up
    expect(value('berth_events_subscribers')).toBe(2);
    await exchange.publish('default', '/tasks/exit', event());
    await exchange.publish('default', '/tasks/exit', event());
    await take(reader, 2);
    await exchange.publish('default', '/tasks/exit', event()); // the slow one is disconnected here
    await exchange.forward({ timestamp: new Date(), namespace: 'default', topic: '/tasks/exit', event: event() });
    expect(value('berth_events_published_total', { source: 'publish' })).toBe(3);
    expect(value('berth_events_published_total', { source: 'forward' })).toBe(1);
    expect(value('berth_events_offered_total')).toBe(2 + 2 + 2 + 1);
    expect(value('berth_events_subscribers_disconnected_total')).toBe(1);
    expect(value('berth_events_subscribers')).toBe(1);
    fast.abort();
    expect(value('berth_events_subscribers')).toBe(0);
    slow.abort();
  });
});
