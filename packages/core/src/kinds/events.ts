/** An event payload as it travels: containerd's typeurl Any (type URL without `type.googleapis.com/`). */
export interface AnyValue {
  readonly typeUrl: string;
  readonly value: Uint8Array;
}

export interface Envelope {
  readonly timestamp: Date;
  readonly namespace: string;
  readonly topic: string;
  readonly event: AnyValue;
  /** The decoded event, when the publisher had it: what `event.<field>` filters read. */
  readonly fields?: Readonly<Record<string, unknown>>;
}

export interface EventPublisher {
  /** Validates the topic and namespace, then delivers to subscribers. */
  publish(namespace: string, topic: string, event: AnyValue, fields?: Readonly<Record<string, unknown>>): Promise<void>;
}

export interface EventForwarder {
  /** Delivers an envelope that was published elsewhere (a shim), unchanged. */
  forward(envelope: Envelope): Promise<void>;
}

export interface EventSubscriber {
  /** Envelopes matching any of the filters (all when none), until the signal aborts. */
  subscribe(filters: readonly string[], signal: AbortSignal): AsyncIterable<Envelope>;
}

export interface EventExchange extends EventPublisher, EventForwarder, EventSubscriber {}
