import { once } from 'node:events';
import type { Metadata, Server, ServerDuplexStream, ServerReadableStream, ServerUnaryCall, ServerWritableStream, sendUnaryData, UntypedServiceImplementation } from '@grpc/grpc-js';
import { serviceDefinition } from '@berth/api';
import { InvalidArgumentError, type Logger, type RpcContext, type RpcServiceImplementation } from '@berth/core';
import { toServiceError, toWireStatus } from './errgrpc.js';

export interface CallObserver {
  /** Called once per finished call with its status code (metrics). */
  (service: string, method: string, type: string, code: number): void;
}

function contextOf(metadata: Metadata, call: { on(event: 'cancelled', fn: () => void): unknown }): RpcContext {
  const values: Record<string, string> = {};
  for (const [key, value] of Object.entries(metadata.getMap())) values[key] = typeof value === 'string' ? value : value.toString();
  const controller = new AbortController();
  call.on('cancelled', () => controller.abort());
  return { metadata: values, signal: controller.signal };
}

/**
 * Binds transport-neutral handlers to grpc-js. Handlers just throw; errors become statuses here. A handler method
 * the implementation lacks is left to grpc-js (Unimplemented). Unknown method names in an implementation are a
 * programming error and fail at bind time.
 */
export function bindService(server: Server, impl: RpcServiceImplementation, log: Logger, observe?: CallObserver): void {
  const definition = serviceDefinition(impl.service);
  const handlers: UntypedServiceImplementation = {};
  for (const [method, handler] of Object.entries(impl.handlers)) {
    const def = definition[method];
    if (!def) throw new InvalidArgumentError(`service ${impl.service} has no method ${method}`);
    const done = (code: number) => observe?.(impl.service, method, kindOf(def), code);
    const report = (err: unknown) => {
      const wire = toWireStatus(err);
      if (wire.errdef === 'unknown' || wire.errdef === 'internal') log.error('rpc failed', { method: def.path, error: err });
      else log.debug('rpc error', { method: def.path, error: wire.message });
      done(wire.code);
      return toServiceError(err);
    };
    if (!def.requestStream && !def.responseStream) {
      handlers[method] = (call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>) => {
        Promise.resolve()
          .then(() => handler(call.request, contextOf(call.metadata, call)))
          .then(
            (response) => {
              done(0);
              callback(null, response);
            },
            (err: unknown) => callback(report(err)),
          );
      };
    } else if (!def.requestStream) {
      handlers[method] = (call: ServerWritableStream<unknown, unknown>) => {
        const ctx = contextOf(call.metadata, call);
        writeAll(call, () => handler(call.request, ctx) as AsyncIterable<unknown>, ctx.signal).then(
          () => done(0),
          (err: unknown) => call.emit('error', report(err)),
        );
      };
    } else if (!def.responseStream) {
      handlers[method] = (call: ServerReadableStream<unknown, unknown>, callback: sendUnaryData<unknown>) => {
        Promise.resolve()
          .then(() => handler(requestsOf(call), contextOf(call.metadata, call)))
          .then(
            (response) => {
              done(0);
              callback(null, response);
            },
            (err: unknown) => callback(report(err)),
          );
      };
    } else {
      handlers[method] = (call: ServerDuplexStream<unknown, unknown>) => {
        const ctx = contextOf(call.metadata, call);
        writeAll(call, () => handler(requestsOf(call), ctx) as AsyncIterable<unknown>, ctx.signal).then(
          () => done(0),
          (err: unknown) => call.emit('error', report(err)),
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
): Promise<void> {
  for await (const message of produce()) {
    if (signal.aborted) return;
    if (!call.write(message)) await Promise.race([once(call, 'drain'), once(signal, 'abort')]);
  }
  if (!signal.aborted) call.end();
}

/**
 * The request stream as an AsyncIterable that leaves the call open when the client half-closes or the handler stops
 * reading: iterating a grpc-js call directly destroys it at the end, and the final status would never be sent.
 */
function requestsOf(call: ServerReadableStream<unknown, unknown> | ServerDuplexStream<unknown, unknown>): AsyncIterable<unknown> {
  return call.iterator({ destroyOnReturn: false });
}

function kindOf(def: { requestStream: boolean; responseStream: boolean }): string {
  if (def.requestStream && def.responseStream) return 'bidi_stream';
  if (def.requestStream) return 'client_stream';
  if (def.responseStream) return 'server_stream';
  return 'unary';
}
