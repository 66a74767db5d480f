import { fromAnyValue, messageCodec, packAny, ServiceNames, toAnyValue, implementService, type google } from '@berth/api';
import {
  InvalidArgumentError,
  namespaceOf,
  UnavailableError,
  type AnyValue,
  type RpcContext,
  type RpcServiceImplementation,
  type RpcServices,
  type Stream,
  type StreamManager,
} from '@berth/core';

const STREAM_INIT = 'containerd.services.streaming.v1.StreamInit';

/**
 * containerd.services.streaming.v1.Streaming: each call is one stream. Its first message must be a StreamInit
 * naming it; the stream is registered under the call's namespace, acknowledged with an Any of google.protobuf.Empty
 * (what containerd 2's client waits for), and then belongs to whoever gets it from the manager (Transfer). It is
 * unregistered when the call ends, whichever side ends it.
 */
export class StreamingService implements RpcServices {
  readonly services: readonly RpcServiceImplementation[];

  constructor(private readonly manager: StreamManager) {
    this.services = [
      implementService(ServiceNames.Streaming, {
        Stream: (requests, ctx) => this.stream(requests, ctx),
      }),
    ];
  }

  private async *stream(requests: AsyncIterable<google.protobuf.Any>, ctx: RpcContext): AsyncIterable<google.protobuf.AnyInput> {
    // containerd takes the namespace as it comes (none is the empty one); Transfer looks streams up the same way.
    const namespace = namespaceOf(ctx) ?? '';
    const incoming = requests[Symbol.asyncIterator]();
    const first = await incoming.next();
    if (first.done) return;
    const id = streamIdOf(first.value);
    const stream = new CallStream(incoming, ctx.signal);
    const unregister = this.manager.register(namespace, id, stream);
    try {
      yield packAny('google.protobuf.Empty', {});
      yield* stream.outgoing();
    } finally {
      unregister();
      stream.close();
    }
  }
}

function streamIdOf(init: google.protobuf.Any): string {
  if (init.type_url !== STREAM_INIT) {
    throw new InvalidArgumentError(`the first message of a stream must be a ${STREAM_INIT}, not ${JSON.stringify(init.type_url)}`);
  }
  let id: string;
  try {
    id = messageCodec(STREAM_INIT).decode(init.value).id;
  } catch (err) {
    throw new InvalidArgumentError(`${STREAM_INIT}: ${(err as Error).message}`, { cause: err });
  }
  if (!id) throw new InvalidArgumentError('stream id is required');
  return id;
}

interface Pending {
  readonly message: AnyValue;
  readonly delivered: () => void;
}

/** One call's stream: what send() queues, outgoing() yields to the transport; recv() reads the call's requests. */
export class CallStream implements Stream {
  private readonly queue: Pending[] = [];
  private wake: (() => void) | undefined;
  private closed = false;
  private readonly onAbort = () => this.close();

  constructor(
    private readonly incoming: AsyncIterator<google.protobuf.Any>,
    private readonly signal: AbortSignal,
  ) {
    signal.addEventListener('abort', this.onAbort, { once: true });
  }

  send(message: AnyValue): Promise<void> {
    if (this.closed) return Promise.reject(new UnavailableError('stream closed'));
    return new Promise((resolve) => {
      this.queue.push({ message, delivered: resolve });
      this.wake?.();
    });
  }

  async recv(options: { signal?: AbortSignal } = {}): Promise<AnyValue | undefined> {
    if (this.signal.aborted) return undefined;
    const next = this.incoming.next();
    const signal = options.signal;
    if (!signal) {
      const result = await next;
      return result.done ? undefined : toAnyValue(result.value);
    }
    signal.throwIfAborted();
    let onAbort: (() => void) | undefined;
    const aborted = new Promise<never>((_, reject) => {
      onAbort = () => reject(signal.reason);
      signal.addEventListener('abort', onAbort, { once: true });
    });
    try {
      const result = await Promise.race([next, aborted]);
      return result.done ? undefined : toAnyValue(result.value);
    } finally {
      if (onAbort) signal.removeEventListener('abort', onAbort);
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.signal.removeEventListener('abort', this.onAbort);
    this.wake?.();
  }

  /** The queued messages, in order, until the stream is closed and the queue is empty. */
  async *outgoing(): AsyncGenerator<google.protobuf.AnyInput> {
    for (;;) {
      const next = this.queue.shift();
      if (next) {
        // Taken by the transport: the generator stays suspended until grpc-js can take more (backpressure).
        next.delivered();
        yield fromAnyValue(next.message);
        continue;
      }
      if (this.closed) return;
      await new Promise<void>((resolve) => (this.wake = resolve));
      this.wake = undefined;
    }
  }
}
