/**
 * The in-process events exchange (containerd's events/exchange): publishers validate and broadcast, each
 * subscriber receives the envelopes that match its filters, over `namespace`, `topic` and `event.<field>`
 * (read from `envelope.fields`, the decoded event, when the publisher supplied it).
 *
 * Delivery never waits for a subscriber. Each subscription has a bounded queue (`queueSize`, default 4096
 * envelopes); a subscriber that lets it fill up is **disconnected**, not fed a stream with holes: it is removed
 * from the exchange at once (a warning is logged), it still receives what was queued, and then its iteration
 * throws ResourceExhaustedError. Dropping the oldest envelopes instead would hide the loss from consumers that
 * track state from events (task exits); a disconnected `ctr events` or service can resubscribe.
 *
 * Nor does a publisher wait for the subscribers' filters. Each subscription matches its envelopes itself, in
 * order, from an inbox (counted in its queue): at once while the publish's time slice lasts and the verdicts come
 * synchronously (the usual case, so an envelope is queued when publish() returns), and otherwise in later turns
 * of the event loop, with a `~=` match that is too costly for the loop awaited from its worker thread. So no
 * number of subscribers, and no filter, holds the publisher (a `ctr content rm`) or the loop for long.
 */
import { FailedPreconditionError, InvalidArgumentError, ResourceExhaustedError } from '../errdefs/index.js';
import { adaptObject } from '../filters/adaptor.js';
import { parseFilters, type Adaptor, type Filter } from '../filters/filter.js';
import { TimeSlice } from '../util/time-slice.js';
import { validateIdentifier, validateTopic } from '../identifiers/validate.js';
import type { AnyValue, Envelope, EventExchange } from '../kinds/events.js';
import { nullLogger, type Logger } from '../log/logger.js';
import type { Counter, Gauge, MetricsRegistry } from '../metrics/metrics.js';

export interface LocalEventExchangeOptions {
  readonly log?: Logger;
  /** Envelopes a subscriber may have waiting before it is disconnected. */
  readonly queueSize?: number;
  /** Where the exchange counts what it publishes and delivers (the plugin's registry on /v1/metrics). */
  readonly metrics?: MetricsRegistry;
}

interface ExchangeMeter {
  readonly published: Counter;
  readonly offered: Counter;
  readonly disconnected: Counter;
  readonly subscribers: Gauge;
}

function meterOf(registry: MetricsRegistry): ExchangeMeter {
  return {
    published: registry.counter('berth_events_published_total', 'Envelopes published (publish) or forwarded (forward) to the exchange.', ['source']),
    offered: registry.counter('berth_events_offered_total', 'Envelopes offered to subscribers (one per envelope and live subscriber, before their filters).'),
    disconnected: registry.counter(
      'berth_events_subscribers_disconnected_total',
      'Subscribers disconnected because their queue was full: the events they missed from then on were dropped for them.',
    ),
    subscribers: registry.gauge('berth_events_subscribers', 'Live event subscriptions.'),
  };
}

export const DEFAULT_SUBSCRIBER_QUEUE_SIZE = 4096;

/** What `namespace`, `topic` and `event.<field>` filters read from an envelope. */
export function adaptEnvelope(envelope: Envelope): Adaptor {
  let event: Adaptor | undefined;
  return (fieldpath) => {
    switch (fieldpath[0]) {
      case 'namespace':
        return fieldpath.length === 1 && envelope.namespace ? envelope.namespace : undefined;
      case 'topic':
        return fieldpath.length === 1 && envelope.topic ? envelope.topic : undefined;
      case 'event':
        if (!envelope.fields) return undefined;
        event ??= adaptObject(envelope.fields);
        return event(fieldpath.slice(1));
      default:
        return undefined;
    }
  };
}

// Go's zero time (0001-01-01T00:00:00Z): what an unset timestamp decodes to there.
const GO_ZERO_TIME = -62135596800000;

function isUnsetTimestamp(timestamp: unknown): boolean {
  if (!(timestamp instanceof Date)) return true;
  const ms = timestamp.getTime();
  return Number.isNaN(ms) || ms === 0 || ms <= GO_ZERO_TIME;
}

function wrap(prefix: string, err: unknown): InvalidArgumentError {
  return new InvalidArgumentError(`${prefix}: ${(err as Error).message}`, { cause: err });
}

export class LocalEventExchange implements EventExchange {
  private readonly log: Logger;
  private readonly queueSize: number;
  private readonly subscriptions = new Set<Subscription>();
  private readonly meter?: ExchangeMeter;

  constructor(options: LocalEventExchangeOptions = {}) {
    this.log = options.log ?? nullLogger;
    if (options.metrics) {
      this.meter = meterOf(options.metrics);
      this.meter.published.inc({ source: 'publish' }, 0);
      this.meter.published.inc({ source: 'forward' }, 0);
      this.meter.offered.inc(undefined, 0);
      this.meter.disconnected.inc(undefined, 0);
      this.meter.subscribers.set(0);
    }
    this.queueSize = options.queueSize ?? DEFAULT_SUBSCRIBER_QUEUE_SIZE;
    if (!Number.isInteger(this.queueSize) || this.queueSize < 1) {
      throw new InvalidArgumentError(`subscriber queue size must be a positive integer, got ${this.queueSize}`);
    }
  }

  /** Live subscriptions (for introspection and tests). */
  get subscriberCount(): number {
    return this.subscriptions.size;
  }

  async publish(
    namespace: string,
    topic: string,
    event: AnyValue,
    fields?: Readonly<Record<string, unknown>>,
  ): Promise<void> {
    if (!namespace) throw new FailedPreconditionError('failed publishing event: namespace is required');
    try {
      validateIdentifier(namespace);
    } catch (err) {
      throw wrap('failed publishing event: namespace validation', err);
    }
    try {
      validateTopic(topic);
    } catch (err) {
      throw wrap(`envelope topic ${JSON.stringify(topic)}`, err);
    }
    const envelope: Envelope = { timestamp: new Date(), namespace, topic, event, ...(fields ? { fields } : {}) };
    this.meter?.published.inc(PUBLISH);
    this.broadcast(envelope);
    this.log.debug('event published', { topic, ns: namespace, type: event.typeUrl });
  }

  async forward(envelope: Envelope): Promise<void> {
    try {
      validateIdentifier(envelope.namespace);
    } catch (err) {
      throw wrap('event envelope has invalid namespace', err);
    }
    try {
      validateTopic(envelope.topic);
    } catch (err) {
      throw wrap(`envelope topic ${JSON.stringify(envelope.topic)}`, err);
    }
    if (isUnsetTimestamp(envelope.timestamp)) {
      throw new InvalidArgumentError('timestamp must be set on forwarded event');
    }
    this.meter?.published.inc(FORWARD);
    this.broadcast(envelope);
    this.log.debug('event forwarded', { topic: envelope.topic, ns: envelope.namespace, type: envelope.event.typeUrl });
  }

  /**
   * Registers at once (nothing published after this call is missed), even before iteration starts. Throws
   * InvalidArgumentError for malformed filters. Ends, without error, when the signal aborts or the consumer
   * stops iterating (`break`).
   */
  subscribe(filters: readonly string[], signal: AbortSignal): AsyncIterable<Envelope> {
    let filter: Filter;
    try {
      filter = parseFilters(filters);
    } catch (err) {
      throw wrap('failed parsing subscription filters', err);
    }
    const subscription = new Subscription(filter, this.queueSize, () => {
      if (this.subscriptions.delete(subscription)) this.meter?.subscribers.set(this.subscriptions.size);
    });
    if (signal.aborted) {
      subscription.end();
      return subscription;
    }
    const onAbort = () => subscription.end();
    signal.addEventListener('abort', onAbort, { once: true });
    subscription.onEnd(() => signal.removeEventListener('abort', onAbort));
    this.subscriptions.add(subscription);
    this.meter?.subscribers.set(this.subscriptions.size);
    return subscription;
  }

  /** Ends every subscription (shutdown): their iterations finish normally. */
  close(): void {
    for (const subscription of [...this.subscriptions]) subscription.end();
  }

  private broadcast(envelope: Envelope): void {
    if (this.subscriptions.size === 0) return;
    const item: Item = { envelope, adaptor: adaptEnvelope(envelope) };
    const slice = new TimeSlice();
    this.meter?.offered.inc(undefined, this.subscriptions.size);
    for (const subscription of [...this.subscriptions]) {
      if (!subscription.offer(item, slice)) {
        this.meter?.disconnected.inc();
        this.log.warn('event subscriber too slow, disconnecting it', {
          queue: this.queueSize,
          topic: envelope.topic,
          ns: envelope.namespace,
        });
      }
    }
  }
}

const PUBLISH = { source: 'publish' };
const FORWARD = { source: 'forward' };

type Waiter = { resolve(result: IteratorResult<Envelope>): void; reject(err: unknown): void };

/** An envelope on its way to the subscribers, with the one adaptor their filters share. */
interface Item {
  readonly envelope: Envelope;
  readonly adaptor: Adaptor;
}

/** One subscriber's inbox (not yet matched) and queue (matched), consumed as an async iterator. */
class Subscription implements AsyncIterableIterator<Envelope> {
  private readonly inbox: Item[] = [];
  private matching = false;
  private readonly queue: Envelope[] = [];
  private readonly waiters: Waiter[] = [];
  private readonly endListeners: (() => void)[] = [];
  private ended = false;
  private failure: Error | undefined;

  constructor(
    readonly filter: Filter,
    private readonly limit: number,
    unregister: () => void,
  ) {
    this.endListeners.push(unregister);
  }

  onEnd(listener: () => void): void {
    this.endListeners.push(listener);
  }

  /**
   * Takes an envelope to match and deliver, matching at once while `slice` lasts; false (and disconnected) when
   * the subscriber already has `queueSize` envelopes waiting.
   */
  offer(item: Item, slice: TimeSlice): boolean {
    if (this.ended) return true;
    if (this.inbox.length + this.queue.length >= this.limit) {
      this.failure = new ResourceExhaustedError(
        `event subscriber disconnected: more than ${this.limit} envelopes waiting to be read`,
      );
      this.detach();
      return false;
    }
    this.inbox.push(item);
    if (!this.matching) this.match(slice);
    return true;
  }

  /** Matches the inbox in order: synchronously while it can, then in later turns (see the header). */
  private match(slice: TimeSlice): void {
    this.matching = true;
    while (this.inbox.length > 0 && !this.ended) {
      if (slice.expired) {
        setImmediate(() => this.match(new TimeSlice()));
        return;
      }
      const item = this.inbox[0]!;
      let verdict: boolean | Promise<boolean>;
      try {
        verdict = this.filter.match(item.adaptor);
      } catch (err) {
        this.fail(err);
        return;
      }
      if (typeof verdict !== 'boolean') {
        void verdict.then(
          (matched) => {
            this.settle(item, matched);
            this.match(new TimeSlice());
          },
          (err: unknown) => this.fail(err),
        );
        return;
      }
      this.settle(item, verdict);
    }
    this.matching = false;
  }

  private settle(item: Item, matched: boolean): void {
    if (this.inbox[0] !== item) return; // ended meanwhile
    this.inbox.shift();
    if (matched) this.deliver(item.envelope);
  }

  /** Hands a matched envelope to a waiting reader, or queues it. */
  private deliver(envelope: Envelope): void {
    if (this.ended) return;
    const waiter = this.waiters.shift();
    if (waiter) waiter.resolve({ value: envelope, done: false });
    else this.queue.push(envelope);
  }

  /** Ends delivery with an error after what is queued (a match that could not run). */
  private fail(err: unknown): void {
    this.matching = false;
    this.inbox.length = 0;
    const failure = err instanceof Error ? err : new Error(String(err));
    const waiters = this.waiters.splice(0);
    if (waiters.length === 0) this.failure = failure;
    for (const waiter of waiters) waiter.reject(failure);
    this.detach();
  }

  /** Stops delivery and drops what is queued; pending and later reads finish. */
  end(): void {
    this.queue.length = 0;
    this.inbox.length = 0;
    this.matching = false;
    this.failure = undefined;
    this.detach();
  }

  next(): Promise<IteratorResult<Envelope>> {
    const value = this.queue.shift();
    if (value) return Promise.resolve({ value, done: false });
    if (this.failure) {
      const failure = this.failure;
      this.failure = undefined;
      return Promise.reject(failure);
    }
    if (this.ended) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  return(): Promise<IteratorResult<Envelope>> {
    this.end();
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<Envelope> {
    return this;
  }

  /** No more deliveries: leave the exchange and settle the readers that wait. */
  private detach(): void {
    if (this.ended) return;
    this.ended = true;
    for (const listener of this.endListeners.splice(0)) listener();
    for (const waiter of this.waiters.splice(0)) waiter.resolve({ value: undefined, done: true });
  }
}
