// gRPC calls with bytes as they are: a grpc-js client whose serializers pass buffers through, so the corpus can send
// what no encoder would produce. `call`/`stream` encode and decode with the shared codec for the ordinary requests
// (fixtures, state snapshots) over the same channel.
import { Client, credentials, Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { messageCodec, serviceMethod } from '@berth/api';

/** `open`: a server stream was still open, without error, when the caller stopped listening. */
export type CallCode = number | 'open';

export interface RawResult {
  readonly code: CallCode;
  readonly details: string;
  readonly messages: readonly Buffer[];
}

export interface CallOptions {
  /** `null` sends no `containerd-namespace`; a string sends it. */
  readonly namespace?: string | null;
  readonly lease?: string;
  readonly timeoutMs?: number;
  /** Server streams: stop listening after this long and report `open` (Subscribe and Watch never end by themselves). */
  readonly openMs?: number;
}

const identity = (b: Buffer): Buffer => b;

export const codeName = (code: CallCode): string =>
  code === 'open' ? 'OPEN' : ((Object.entries(status).find(([, v]) => v === code)?.[0] as string | undefined) ?? String(code));

export class RawGrpc {
  private readonly client: Client;

  constructor(
    readonly address: string,
    private readonly defaults: { namespace?: string | null; timeoutMs?: number } = {},
  ) {
    this.client = new Client(`unix://${address}`, credentials.createInsecure(), {
      'grpc.max_send_message_length': -1,
      'grpc.max_receive_message_length': -1,
      // Reconnect at once after a restart of the daemon instead of backing off for seconds.
      'grpc.initial_reconnect_backoff_ms': 50,
      'grpc.max_reconnect_backoff_ms': 200,
    });
  }

  close(): void {
    this.client.close();
  }

  private metadata(options: CallOptions): Metadata {
    const md = new Metadata();
    const ns = options.namespace === undefined ? this.defaults.namespace : options.namespace;
    if (ns !== null && ns !== undefined) md.set('containerd-namespace', ns);
    if (options.lease) md.set('containerd-lease', options.lease);
    return md;
  }

  private deadline(options: CallOptions): Date {
    return new Date(Date.now() + (options.timeoutMs ?? this.defaults.timeoutMs ?? 10_000));
  }

  /** Sends `messages` as the request (one for unary and server-streaming methods) and collects the outcome. */
  send(service: string, method: string, messages: readonly Buffer[], options: CallOptions = {}): Promise<RawResult> {
    const m = serviceMethod(service, method);
    if (!m) throw new Error(`method ${service}/${method}: not found`);
    const path = `/${service}/${method}`;
    const md = this.metadata(options);
    const callOptions = { deadline: this.deadline(options) };
    if (!m.requestStream && !m.responseStream) {
      return new Promise((resolve) => {
        this.client.makeUnaryRequest(path, identity, identity, messages[0] ?? Buffer.alloc(0), md, callOptions, (err: ServiceError | null, res?: Buffer) =>
          resolve(err ? { code: err.code, details: err.details, messages: [] } : { code: status.OK, details: '', messages: res ? [res] : [] }),
        );
      });
    }
    const call = m.requestStream
      ? this.client.makeBidiStreamRequest(path, identity, identity, md, callOptions)
      : this.client.makeServerStreamRequest(path, identity, identity, messages[0] ?? Buffer.alloc(0), md, callOptions);
    return new Promise((resolve) => {
      const received: Buffer[] = [];
      let settled = false;
      let openTimer: NodeJS.Timeout | undefined;
      const finish = (code: CallCode, details: string) => {
        if (settled) return;
        settled = true;
        if (openTimer) clearTimeout(openTimer);
        resolve({ code, details, messages: received });
      };
      call.on('data', (b: Buffer) => received.push(b));
      call.on('error', (err: ServiceError) => finish(err.code, err.details));
      call.on('status', (s: { code: number; details: string }) => finish(s.code, s.details));
      if (options.openMs !== undefined) {
        openTimer = setTimeout(() => {
          finish('open', '');
          call.cancel();
        }, options.openMs);
      }
      if (m.requestStream) {
        const duplex = call as ReturnType<Client['makeBidiStreamRequest']>;
        for (const msg of messages) duplex.write(msg);
        duplex.end();
      }
    });
  }

  /** Opens a server stream and hands each decoded message to `onMessage` until cancelled or ended. */
  open<T = Record<string, unknown>>(service: string, method: string, request: unknown, onMessage: (message: T) => void, options: CallOptions = {}): { cancel(): void; ended: Promise<CallCode> } {
    const m = serviceMethod(service, method)!;
    const call = this.client.makeServerStreamRequest(`/${service}/${method}`, identity, identity, messageCodec(m.requestType).encode(request), this.metadata(options), {
      deadline: options.timeoutMs ? new Date(Date.now() + options.timeoutMs) : Infinity,
    });
    call.on('data', (b: Buffer) => onMessage(messageCodec<T>(m.responseType).decode(b)));
    const ended = new Promise<CallCode>((resolve) => {
      call.on('error', (err: ServiceError) => resolve(err.code));
      call.on('status', (s: { code: number }) => resolve(s.code));
    });
    return { cancel: () => call.cancel(), ended };
  }

  /** An ordinary unary call: encodes `request` and decodes the response; throws a ServiceError-like on failure. */
  async call<T = Record<string, unknown>>(service: string, method: string, request: unknown, options: CallOptions = {}): Promise<T> {
    const m = serviceMethod(service, method)!;
    const res = await this.send(service, method, [messageCodec(m.requestType).encode(request)], options);
    if (res.code !== status.OK) throw new CallError(`${method}`, res);
    return messageCodec<T>(m.responseType).decode(res.messages[0] ?? Buffer.alloc(0));
  }

  /** An ordinary streaming call (server or bidi streaming): every response decoded. */
  async stream<T = Record<string, unknown>>(service: string, method: string, requests: readonly unknown[], options: CallOptions = {}): Promise<T[]> {
    const m = serviceMethod(service, method)!;
    const res = await this.send(service, method, requests.map((r) => messageCodec(m.requestType).encode(r)), options);
    if (res.code !== status.OK) throw new CallError(`${method}`, res);
    return res.messages.map((b) => messageCodec<T>(m.responseType).decode(b));
  }
}

export class CallError extends Error {
  readonly code: CallCode;
  readonly details: string;
  constructor(what: string, res: RawResult) {
    super(`${what}: ${codeName(res.code)}: ${res.details}`);
    this.code = res.code;
    this.details = res.details;
  }
}
