import { once } from 'node:events';
import type { Metadata, Server, ServerDuplexStream, ServerReadableStream, ServerUnaryCall, ServerWritableStream, sendUnaryData, UntypedServiceImplementation } from '@grpc/grpc-js';
import type { GrpcMethodDefinition, GrpcServiceDefinition } from '@berth/api';
import { InternalError, InvalidArgumentError, type Logger, type RpcContext, type RpcServiceImplementation } from '@berth/core';
import type { MethodMeter, MethodMeterFactory } from '../grpc-metrics.js';
import { toServiceError, toWireStatus } from './errgrpc.js';

/** Called once per method at bind time for the meter its calls report to (gRPC metrics). */
export type CallObserver = MethodMeterFactory;

interface CallContext {
  readonly ctx: RpcContext;
  /** The handler is done: a cancellation arriving later (clients cancel once they have what they want) is moot. */
  finish(): void;
}

function contextOf(metadata: Metadata, call: { on(event: 'cancelled', fn: () => void): unknown }): CallContext {
  const values: Record<string, string> = {};
  for (const [key, value] of Object.entries(metadata.getMap())) values[key] = typeof value === 'string' ? value : value.toString();
  const controller = new AbortController();
  let finished = false;
  // Aborting builds a DOMException, costly on the hot path: Go clients cancel every finished server stream (e.g. the
  // Read behind each 32 KiB ReadAt), when nothing is left to abort.
  call.on('cancelled', () => {
    if (!finished) controller.abort();
  });
  return {
    ctx: { metadata: values, signal: controller.signal },
    finish: () => {
      finished = true;
    },
  };
}

/**
 * Binds transport-neutral handlers to grpc-js. Handlers just throw; errors become statuses here. A handler method
 * the implementation lacks is left to grpc-js (Unimplemented). Method names were checked at the plugin's init
 * (ServiceCatalog); a name the definition lacks here is a programming error.
 */
export function bindService(server: Server, impl: RpcServiceImplementation, resolved: GrpcServiceDefinition, log: Logger, observe?: CallObserver): void {
  const definition = reportingUndecodable(resolved);
  const handlers: UntypedServiceImplementation = {};
  for (const [method, handler] of Object.entries(impl.handlers)) {
    const def = definition[method];
    if (!def) throw new InvalidArgumentError(`service ${impl.service} has no method ${method}`);
    const meter = observe?.(impl.service, method, kindOf(def));
    const report = (err: unknown, startedAt: number) => {
      const wire = toWireStatus(err);
      // A request that does not decode is the client's fault, however INTERNAL its code: no error log to flood.
      const clientFault = err instanceof RequestDecodeError;
      if (!clientFault && (wire.errdef === 'unknown' || wire.errdef === 'internal')) log.error('rpc failed', { method: def.path, error: err });
      else log.debug('rpc error', { method: def.path, error: wire.message });
      meter?.handled(wire.code, (performance.now() - startedAt) / 1000);
      return toServiceError(err);
    };
    // The request is one message, or (client and bidi streaming) the stream of them.
    const requestOf = (call: AnyCall): unknown => {
      if (def.requestStream) return requestsOf(call as StreamingCall, meter);
      meter?.received();
      const request = (call as { request: unknown }).request;
      if (request instanceof UndecodableRequest) throw new RequestDecodeError(request.error, def.responseStream);
      return request;
    };
    if (!def.responseStream) {
      handlers[method] = (call: AnyCall, callback: sendUnaryData<unknown>) => {
        const startedAt = meter ? performance.now() : 0;
        meter?.started();
        const { ctx, finish } = contextOf(call.metadata, call);
        Promise.resolve()
          .then(() => handler(requestOf(call), ctx))
          .then(
            (response) => {
              finish();
              if (meter) {
                meter.sent();
                meter.handled(0, (performance.now() - startedAt) / 1000);
              }
              callback(null, response);
            },
            (err: unknown) => callback(report(err, startedAt)),
          );
      };
    } else {
      handlers[method] = (call: ServerWritableStream<unknown, unknown> | ServerDuplexStream<unknown, unknown>) => {
        const startedAt = meter ? performance.now() : 0;
        meter?.started();
        const { ctx, finish } = contextOf(call.metadata, call);
        writeAll(call, () => handler(requestOf(call), ctx) as AsyncIterable<unknown>, ctx.signal, finish, meter).then(
          () => meter?.handled(0, (performance.now() - startedAt) / 1000),
          (err: unknown) => call.emit('error', report(err, startedAt)),
        );
      };
    }
  }
  server.addService(definition as never, handlers);
}

async function writeAll(
  call: ServerWritableStream<unknown, unknown> | ServerDuplexStream<unknown, unknown>,
  produce: () => AsyncIterable<unknown>,
  signal: AbortSignal,
  finish: () => void,
  meter: MethodMeter | undefined,
): Promise<void> {
  for await (const message of produce()) {
    if (signal.aborted) return;
    meter?.sent();
    if (!call.write(message)) await drained(call, signal);
  }
  if (signal.aborted) return;
  finish();
  call.end();
}

/** Waits for 'drain' or the abort of the call, leaving no listener behind either way. */
async function drained(call: NodeJS.EventEmitter, signal: AbortSignal): Promise<void> {
  try {
    await once(call, 'drain', { signal });
  } catch (err) {
    if (!signal.aborted) throw err;
  }
}

/**
 * The request stream as an AsyncIterable that leaves the call open when the client half-closes or the handler stops
 * reading: iterating a grpc-js call directly destroys it at the end, and the final status would never be sent.
 */
type StreamingCall = ServerReadableStream<unknown, unknown> | ServerDuplexStream<unknown, unknown>;
type AnyCall = ServerUnaryCall<unknown, unknown> | ServerWritableStream<unknown, unknown> | StreamingCall;

function requestsOf(call: StreamingCall, meter: MethodMeter | undefined): AsyncIterable<unknown> {
  const iterator = call.iterator({ destroyOnReturn: false });
  return {
    [Symbol.asyncIterator]: () => ({
      next: async () => {
        const next = await iterator.next();
        if (!next.done) meter?.received();
        if (!next.done && next.value instanceof UndecodableRequest) throw new RequestDecodeError(next.value.error, true);
        return next;
      },
      return: async (value?: unknown) => (await iterator.return?.(value)) ?? { done: true as const, value },
    }),
  };
}

/**
 * What requestDeserialize hands over for bytes that do not decode. grpc-js would answer a throwing deserializer
 * itself, with INTERNAL and a bare "Error deserializing request" that hides which field of which message is wrong;
 * the handler wrapper answers instead, with the decoder's message.
 */
class UndecodableRequest {
  constructor(readonly error: unknown) {}
}

/** A request that does not decode: INTERNAL, with grpc-go's words (a unary request, or a message of a stream). */
class RequestDecodeError extends InternalError {
  constructor(cause: unknown, streaming: boolean) {
    const detail = cause instanceof Error ? cause.message : String(cause);
    super(streaming ? `grpc: failed to unmarshal the received message: ${detail}` : `grpc: error unmarshalling request: ${detail}`, { cause });
  }
}

function reportingUndecodable(definition: GrpcServiceDefinition): GrpcServiceDefinition {
  const out: Record<string, GrpcMethodDefinition> = {};
  for (const [name, def] of Object.entries(definition)) {
    out[name] = {
      ...def,
      requestDeserialize: (bytes: Buffer) => {
        try {
          return def.requestDeserialize(bytes);
        } catch (err) {
          return new UndecodableRequest(err);
        }
      },
    };
  }
  return out;
}

function kindOf(def: { requestStream: boolean; responseStream: boolean }): string {
  if (def.requestStream && def.responseStream) return 'bidi_stream';
  if (def.requestStream) return 'client_stream';
  if (def.responseStream) return 'server_stream';
  return 'unary';
}
