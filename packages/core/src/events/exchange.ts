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
 */
import { FailedPreconditionError, InvalidArgumentError, ResourceExhaustedError } from '../errdefs/index.js';
import { adaptObject } from '../filters/adaptor.js';
import { parseFilters, type Adaptor, type Filter } from '../filters/filter.js';
import { validateIdentifier, validateTopic } from '../identifiers/validate.js';
import type { AnyValue, Envelope, EventExchange } from '../kinds/events.js';
import { nullLogger, type Logger } from '../log/logger.js';

export interface LocalEventExchangeOptions {
  readonly log?: Logger;
  /** Envelopes a subscriber may have waiting before it is disconnected. */
  readonly queueSize?: number;
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

  constructor(options: LocalEventExchangeOptions = {}) {
    this.log = options.log ?? nullLogger;
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
    const subscription = new Subscription(filter, this.queueSize, () => this.subscriptions.delete(subscription));
    if (signal.aborted) {
      subscription.end();
      return subscription;
    }
    const onAbort = () => subscription.end();
    signal.addEventListener('abort', onAbort, { once: true });
    subscription.onEnd(() => signal.removeEventListener('abort', onAbort));
    this.subscriptions.add(subscription);
    return subscription;
  }

  /** Ends every subscription (shutdown): their iterations finish normally. */
  close(): void {
    for (const subscription of [...this.subscriptions]) subscription.end();
  }

  private broadcast(envelope: Envelope): void {
    if (this.subscriptions.size === 0) return;
    const adaptor = adaptEnvelope(envelope);
    for (const subscription of [...this.subscriptions]) {
      if (!subscription.filter.match(adaptor)) continue;
      if (!subscription.offer(envelope)) {
        this.log.warn('event subscriber too slow, disconnecting it', {
          queue: this.queueSize,
          topic: envelope.topic,
          ns: envelope.namespace,
        });
      }
    }
  }
}

type Waiter = { resolve(result: IteratorResult<Envelope>): void; reject(err: unknown): void };

/** One subscriber's queue, consumed as an async iterator. */
class Subscription implements AsyncIterableIterator<Envelope> {
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

  /** Queues or hands over an envelope; false (and disconnected) when the queue was full. */
  offer(envelope: Envelope): boolean {
    if (this.ended) return true;
    const waiter = this.waiters.shift();
    if (waiter) {
      waiter.resolve({ value: envelope, done: false });
      return true;
    }
    if (this.queue.length >= this.limit) {
      this.failure = new ResourceExhaustedError(
        `event subscriber disconnected: more than ${this.limit} envelopes waiting to be read`,
      );
      this.detach();
      return false;
    }
    this.queue.push(envelope);
    return true;
  }

  /** Stops delivery and drops what is queued; pending and later reads finish. */
  end(): void {
    this.queue.length = 0;
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
