// One generic factory turns any service of @berth/api into a typed client: unary methods return Promises, server
// streams AsyncIterables, bidirectional streams map an AsyncIterable of requests to an AsyncIterable of responses.
// Every call carries the namespace/lease metadata and maps failures through fromGrpc.
import {
  credentials,
  makeGenericClientConstructor,
  Metadata,
  type CallOptions as GrpcCallOptions,
  type Channel,
  type Client,
  type ClientDuplexStream,
  type ServiceDefinition,
} from '@grpc/grpc-js';
import { serviceDefinition, type GrpcMethodDefinition, type RpcCallOptions, type ServiceName, type Services } from '@berth/api';
import { LEASE_METADATA_KEY, NAMESPACE_METADATA_KEY, NotImplementedError } from '@berth/core';
import { fromGrpc } from './errors.js';

/** Per-call options: the generated RpcCallOptions plus namespace/lease overrides and an absolute deadline. */
export interface CallOptions extends RpcCallOptions {
  /** Overrides the client's namespace for this call; an empty string sends none. */
  readonly namespace?: string;
  /** Overrides the client's lease (`containerd-lease`) for this call; an empty string sends none. */
  readonly lease?: string;
  /** Absolute deadline; wins over timeoutMs. */
  readonly deadline?: Date | number;
}

/** The generated `<Service>Client` interface, with Berth's CallOptions accepted wherever RpcCallOptions is. */
export type ServiceClient<N extends ServiceName> = {
  [K in keyof Services[N]['client']]: Services[N]['client'][K] extends (input: infer I, options?: RpcCallOptions) => infer R
    ? (input: I, options?: CallOptions) => R
    : never;
};

export interface ServiceClientDefaults {
  /** Namespace sent when a call names none. */
  readonly namespace?: string;
  /** Lease sent when a call names none: what the calls create is added to it. */
  readonly lease?: string;
  /** Deadline of unary calls that set none; streams are not limited by default. */
  readonly timeoutMs?: number;
}

function metadataOf(options: CallOptions, defaults: ServiceClientDefaults): Metadata {
  const md = new Metadata();
  for (const [key, value] of Object.entries(options.metadata ?? {})) {
    for (const v of typeof value === 'string' ? [value] : value) md.add(key.toLowerCase(), v);
  }
  const namespace = options.namespace ?? defaults.namespace;
  if (namespace) md.set(NAMESPACE_METADATA_KEY, namespace);
  const lease = options.lease ?? defaults.lease;
  if (lease) md.set(LEASE_METADATA_KEY, lease);
  return md;
}

function grpcOptionsOf(options: CallOptions, defaultTimeoutMs: number | undefined): GrpcCallOptions {
  if (options.deadline !== undefined) return { deadline: options.deadline };
  const timeoutMs = options.timeoutMs ?? defaultTimeoutMs;
  return timeoutMs !== undefined && timeoutMs > 0 ? { deadline: Date.now() + timeoutMs } : {};
}

/** Cancels the call when the signal aborts; returns the function that detaches the listener. */
function linkSignal(signal: AbortSignal | undefined, call: { cancel(): void }): () => void {
  if (!signal) return () => {};
  if (signal.aborted) {
    call.cancel();
    return () => {};
  }
  const onAbort = () => call.cancel();
  signal.addEventListener('abort', onAbort, { once: true });
  return () => signal.removeEventListener('abort', onAbort);
}

const ignore = (): void => {};

interface PumpState {
  /** Set once the response side is over: the pump stops writing. */
  settled: boolean;
  /** What the request iterable threw, if it did (the call is cancelled then). */
  inputError?: { error: unknown };
}

/**
 * Yields a streaming call's responses, with failures mapped by `toError`. A consumer that stops early ends the call;
 * its CANCELLED status must not surface as an unhandled error.
 */
async function* responsesOf(
  call: AsyncIterable<unknown> & { cancel(): void; on(event: 'error', fn: () => void): unknown },
  signal: AbortSignal | undefined,
  toError: (err: unknown) => unknown,
): AsyncGenerator<unknown> {
  const unlink = linkSignal(signal, call);
  let finished = false;
  try {
    for await (const message of call) yield message;
    finished = true;
  } catch (err) {
    finished = true;
    throw toError(err);
  } finally {
    unlink();
    if (!finished) {
      call.on('error', ignore);
      call.cancel();
    }
  }
}

/** Writes every request into the call, respecting backpressure, then half-closes it. */
async function pump<T>(inputs: AsyncIterator<T>, call: ClientDuplexStream<T, unknown>, state: PumpState): Promise<void> {
  try {
    for (;;) {
      const next = await inputs.next();
      if (state.settled) return;
      if (next.done) break;
      if (!call.write(next.value)) {
        await new Promise<void>((resolve) => {
          const done = () => {
            call.off('drain', done);
            call.off('close', done);
            resolve();
          };
          call.on('drain', done);
          call.on('close', done);
        });
      }
    }
    if (!state.settled) call.end();
  } catch (error) {
    state.inputError = { error };
    call.cancel();
  }
}

type AnyMethod = (input: unknown, options?: CallOptions) => unknown;

function bindMethod(raw: Client, def: GrpcMethodDefinition, defaults: ServiceClientDefaults): AnyMethod {
  const { path, requestSerialize: serialize, responseDeserialize: deserialize } = def;

  if (!def.requestStream && !def.responseStream) {
    return (input, options = {}) =>
      new Promise((resolve, reject) => {
        let unlink = ignore;
        const call = raw.makeUnaryRequest(
          path,
          serialize,
          deserialize,
          input,
          metadataOf(options, defaults),
          grpcOptionsOf(options, defaults.timeoutMs),
          (err, value) => {
            unlink();
            if (err) reject(fromGrpc(err));
            else resolve(value);
          },
        );
        unlink = linkSignal(options.signal, call);
      });
  }

  if (!def.requestStream) {
    return (input, options = {}) =>
      (async function* () {
        const call = raw.makeServerStreamRequest(path, serialize, deserialize, input, metadataOf(options, defaults), grpcOptionsOf(options, undefined));
        yield* responsesOf(call, options.signal, fromGrpc);
      })();
  }

  if (def.responseStream) {
    return (inputs, options = {}) =>
      (async function* () {
        const call = raw.makeBidiStreamRequest(path, serialize, deserialize, metadataOf(options, defaults), grpcOptionsOf(options, undefined));
        const requests = (inputs as AsyncIterable<unknown>)[Symbol.asyncIterator]();
        const state: PumpState = { settled: false };
        // Cannot reject: pump catches every failure and hands it over through `state`.
        void pump(requests, call, state);
        try {
          yield* responsesOf(call, options.signal, (err) => (state.inputError ? state.inputError.error : fromGrpc(err)));
        } finally {
          state.settled = true;
          Promise.resolve(requests.return?.()).catch(ignore);
        }
      })();
  }

  // No service of the API has a client-streaming method yet; say so instead of guessing a shape.
  return () => {
    throw new NotImplementedError(`client streaming method ${path}`);
  };
}

/**
 * A typed client of one service over a shared channel. The instance comes from grpc-js's generic client
 * constructor; calls go through its typed request methods with the definition's path and codecs.
 */
export function createServiceClient<N extends ServiceName>(name: N, channel: Channel, defaults: ServiceClientDefaults = {}): ServiceClient<N> {
  const definition = serviceDefinition(name);
  const Constructor = makeGenericClientConstructor(definition as unknown as ServiceDefinition, name);
  const raw = new Constructor('unused:', credentials.createInsecure(), { channelOverride: channel });
  const methods: Record<string, AnyMethod> = {};
  for (const [method, def] of Object.entries(definition)) methods[method] = bindMethod(raw, def, defaults);
  return methods as unknown as ServiceClient<N>;
}
