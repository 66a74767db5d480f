// A ttrpc 1.1 client over a unix socket: unary calls multiplexed on odd stream ids, answered in any order.
import { createConnection, type Socket } from 'node:net';
import { messageCodec } from '../codec.js';
import type { google, ServiceName, Services } from '../generated/types.js';
import type { RpcCallOptions } from '../rpc-types.js';
import { serviceMethods } from '../services.js';
import { RpcStatusError, StatusCode, type RpcStatus } from '../status.js';
import { FrameDecoder, FrameType, MAX_FRAME_PAYLOAD, encodeFrame, type DecodedFrame } from './frame.js';
import { toKeyValues, type MetadataInput } from './metadata.js';

export interface TtrpcClientOptions {
  /** Turns a non-OK status (from the server, or a local failure) into the error a call rejects with. */
  readonly statusToError?: (status: RpcStatus) => Error;
  /** Metadata sent with every call; per-call metadata replaces a key given here. */
  readonly metadata?: MetadataInput;
}

interface PendingCall {
  resolve(payload: Buffer): void;
  reject(err: Error): void;
}

type MethodsOf<S extends ServiceName> = Services[S]['methods'];
type MethodInfo<S extends ServiceName, M extends keyof MethodsOf<S>> = MethodsOf<S>[M] extends {
  requestInput: infer I;
  response: infer O;
}
  ? { input: I; output: O }
  : never;

const requestCodec = () => messageCodec('ttrpc.Request');
const responseCodec = () => messageCodec('ttrpc.Response');

function defaultStatusToError(status: RpcStatus): Error {
  return new RpcStatusError(status);
}

export class TtrpcClient {
  private readonly decoder = new FrameDecoder();
  private readonly pending = new Map<number, PendingCall>();
  private readonly statusToError: (status: RpcStatus) => Error;
  private nextStreamId = 1;
  private closeError: Error | undefined;
  private readonly closedPromise: Promise<void>;
  private markClosed!: () => void;

  /** Connects to a ttrpc server listening on a unix socket. */
  static connect(path: string, options: TtrpcClientOptions = {}): Promise<TtrpcClient> {
    return new Promise((resolve, reject) => {
      const socket = createConnection({ path });
      const onError = (err: Error): void => {
        socket.destroy();
        const toError = options.statusToError ?? defaultStatusToError;
        const e = toError({ code: StatusCode.UNAVAILABLE, message: `ttrpc: dial ${path}: ${err.message}` });
        if (e.cause === undefined) Object.defineProperty(e, 'cause', { value: err, configurable: true });
        reject(e);
      };
      socket.once('error', onError);
      socket.once('connect', () => {
        socket.off('error', onError);
        resolve(new TtrpcClient(socket, options));
      });
    });
  }

  constructor(
    private readonly socket: Socket,
    private readonly options: TtrpcClientOptions = {},
  ) {
    this.statusToError = options.statusToError ?? defaultStatusToError;
    this.closedPromise = new Promise((resolve) => (this.markClosed = resolve));
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => this.shutdown(err));
    socket.on('close', () => this.shutdown());
  }

  /** True once the connection is gone (closed by either side or failed). */
  get closed(): boolean {
    return this.closeError !== undefined;
  }

  /** Settles when the connection is gone. */
  get done(): Promise<void> {
    return this.closedPromise;
  }

  /** Number of calls waiting for a response. */
  get inFlight(): number {
    return this.pending.size;
  }

  /**
   * A unary call with an encoded request; resolves with the encoded response. Rejects with statusToError of the
   * server's status, or of a local one: DEADLINE_EXCEEDED (timeoutMs), CANCELLED (signal), UNAVAILABLE
   * (connection closed or lost), RESOURCE_EXHAUSTED (message too large), INTERNAL (undecodable response).
   */
  callRaw(service: string, method: string, payload: Uint8Array, options: RpcCallOptions = {}): Promise<Buffer> {
    if (this.closeError) return Promise.reject(this.failure(StatusCode.UNAVAILABLE, 'ttrpc: closed'));
    const { signal, timeoutMs } = options;
    if (signal?.aborted) return Promise.reject(this.failure(StatusCode.CANCELLED, 'context canceled'));
    const request = requestCodec().encode({
      service,
      method,
      payload,
      timeout_nano: timeoutMs !== undefined && timeoutMs > 0 ? Math.round(timeoutMs * 1e6) : 0,
      metadata: toKeyValues(this.options.metadata, options.metadata),
    });
    if (request.length > MAX_FRAME_PAYLOAD) {
      return Promise.reject(
        this.failure(
          StatusCode.RESOURCE_EXHAUSTED,
          `message length ${request.length} exceed maximum message size of ${MAX_FRAME_PAYLOAD}`,
        ),
      );
    }
    const streamId = this.allocateStreamId();
    return new Promise<Buffer>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const cleanup = (): void => {
        this.pending.delete(streamId);
        if (timer) clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
      };
      const onAbort = (): void => {
        cleanup();
        reject(this.failure(StatusCode.CANCELLED, 'context canceled'));
      };
      this.pending.set(streamId, {
        resolve: (p) => {
          cleanup();
          resolve(p);
        },
        reject: (e) => {
          cleanup();
          reject(e);
        },
      });
      if (timeoutMs !== undefined && timeoutMs > 0) {
        timer = setTimeout(() => {
          cleanup();
          reject(this.failure(StatusCode.DEADLINE_EXCEEDED, 'context deadline exceeded'));
        }, timeoutMs);
      }
      signal?.addEventListener('abort', onAbort, { once: true });
      this.socket.write(encodeFrame(streamId, FrameType.Request, request));
    });
  }

  /** A unary call of a method of the Root: the request is encoded and the response decoded with the shared codec. */
  call<S extends ServiceName, M extends keyof MethodsOf<S> & string>(
    service: S,
    method: M,
    request: MethodInfo<S, M>['input'],
    options?: RpcCallOptions,
  ): Promise<MethodInfo<S, M>['output']>;
  call(service: string, method: string, request: unknown, options?: RpcCallOptions): Promise<unknown>;
  async call(service: string, method: string, request: unknown, options?: RpcCallOptions): Promise<unknown> {
    const m = serviceMethods(service).find((x) => x.name === method);
    if (!m) throw this.failure(StatusCode.UNIMPLEMENTED, `method ${service}.${method}: not found`);
    if (m.requestStream || m.responseStream) {
      throw this.failure(StatusCode.UNIMPLEMENTED, `method ${service}.${method}: streaming is not supported by ttrpc 1.1`);
    }
    const payload = messageCodec(m.requestType).encode(request);
    const response = await this.callRaw(service, method, payload, options);
    try {
      return messageCodec(m.responseType).decode(response);
    } catch (err) {
      throw this.failure(StatusCode.INTERNAL, `ttrpc: failed to decode ${m.responseType}: ${(err as Error).message}`);
    }
  }

  /** A typed client object for a service whose methods are all unary (e.g. containerd.task.v2.Task). */
  service<S extends ServiceName>(name: S): Services[S]['client'] {
    const client: Record<string, (request: unknown, options?: RpcCallOptions) => Promise<unknown>> = {};
    for (const m of serviceMethods(name)) {
      if (m.requestStream || m.responseStream) {
        throw new Error(`service ${name} has streaming method ${m.name}: not supported by ttrpc 1.1`);
      }
      client[m.name] = (request, options) => this.call(name, m.name, request, options);
    }
    return client as unknown as Services[S]['client'];
  }

  /** Closes the connection; calls still waiting fail with UNAVAILABLE. */
  async close(): Promise<void> {
    this.socket.end();
    this.socket.destroy();
    this.shutdown();
    await this.closedPromise;
  }

  private allocateStreamId(): number {
    for (;;) {
      const id = this.nextStreamId;
      this.nextStreamId = id >= 0xfffffffd ? 1 : id + 2;
      if (!this.pending.has(id)) return id;
    }
  }

  private failure(code: number, message: string): Error {
    return this.statusToError({ code, message });
  }

  private onData(chunk: Buffer): void {
    let frames: DecodedFrame[];
    try {
      frames = this.decoder.push(chunk);
    } catch (err) {
      this.socket.destroy();
      this.shutdown(err as Error);
      return;
    }
    for (const frame of frames) {
      const call = this.pending.get(frame.header.streamId);
      if (!call) continue; // late answer to a timed-out or cancelled call, or a stray stream id
      if (frame.kind === 'oversized') {
        call.reject(
          this.failure(
            StatusCode.RESOURCE_EXHAUSTED,
            `message length ${frame.header.length} exceed maximum message size of ${MAX_FRAME_PAYLOAD}`,
          ),
        );
        continue;
      }
      if (frame.header.type !== FrameType.Response) continue;
      let status: google.rpc.Status | null;
      let payload: Buffer;
      try {
        const response = responseCodec().decode(frame.payload);
        status = response.status;
        payload = response.payload;
      } catch (err) {
        call.reject(this.failure(StatusCode.INTERNAL, `ttrpc: failed to decode response: ${(err as Error).message}`));
        continue;
      }
      if (status && status.code !== StatusCode.OK) {
        call.reject(this.statusToError({ code: status.code, message: status.message, details: status.details }));
      } else {
        call.resolve(payload);
      }
    }
  }

  private shutdown(err?: Error): void {
    if (this.closeError) return;
    this.closeError = err ?? new Error('ttrpc: closed');
    const message = err ? `ttrpc: connection lost: ${err.message}` : 'ttrpc: closed';
    const calls = [...this.pending.values()];
    this.pending.clear();
    for (const call of calls) call.reject(this.failure(StatusCode.UNAVAILABLE, message));
    this.socket.destroy();
    this.markClosed();
  }
}
