// A ttrpc 1.1 server on a unix socket serving unary handlers by service and method, with the shared codec.
import { lstat, unlink } from 'node:fs/promises';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import type { RpcContext } from '@berth/core';
import { messageCodec } from '../codec.js';
import type { ServiceName, Services, ttrpc } from '../generated/types.js';
import { serviceMethods, type ServiceMethod } from '../services.js';
import { StatusCode, defaultErrorToStatus, type RpcStatus } from '../status.js';
import { FRAME_HEADER_LENGTH, FrameDecoder, FrameType, MAX_FRAME_PAYLOAD, encodeFrame, type DecodedFrame } from './frame.js';
import { firstValues } from './metadata.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type TtrpcUnaryHandler = (request: any, ctx: RpcContext) => Promise<unknown>;

export interface TtrpcServerOptions {
  /** Maps what a handler threw to the status sent back. Default: a carried gRPC `code`, else UNKNOWN. */
  readonly errorToStatus?: (err: unknown) => RpcStatus;
  /** Told about failures that have no caller to report to (socket errors, a throwing errorToStatus). */
  readonly onError?: (err: unknown) => void;
  /**
   * Decides whether a connection is served, before anything is read from it (containerd's ttrpc handshaker, e.g.
   * `UnixSocketRequireSameUser`). False refuses it, and so does a throw (reported to onError): the socket is
   * destroyed unread. Injected so that this package needs no native code; the daemon checks SO_PEERCRED.
   */
  readonly authorizePeer?: (socket: Socket) => boolean;
  /**
   * Bytes that unfinished frames of all connections together may claim (default 16 MiB; at least one frame of
   * the largest size). A frame claims its announced length when its header arrives, without allocating it; a
   * connection whose next frame does not fit stops being read until others complete or close.
   */
  readonly maxBufferedBytes?: number;
  /** A frame begun but not completed within this long closes its connection (default 10 s). */
  readonly frameTimeoutMs?: number;
}

export const DEFAULT_MAX_BUFFERED_BYTES = 16 << 20;
export const DEFAULT_FRAME_TIMEOUT_MS = 10_000;

interface RegisteredMethod {
  readonly method: ServiceMethod;
  readonly handler: TtrpcUnaryHandler;
}

interface Connection {
  readonly socket: Socket;
  readonly inFlight: Set<AbortController>;
  readonly decoder: FrameDecoder;
  /** Bytes of the server's buffering budget this connection's unfinished frame holds. */
  claimed: number;
  /** Bytes its unfinished frame needs but could not claim yet (it is queued in `waiting`, not read). */
  wanted: number;
  /** Why reading is paused: waiting for budget, or for the client to read our answers. */
  readonly paused: Set<'budget' | 'drain'>;
  frameTimer?: NodeJS.Timeout;
}

const requestCodec = () => messageCodec('ttrpc.Request');
const responseCodec = () => messageCodec('ttrpc.Response');

export class TtrpcServer {
  private readonly services = new Map<string, Map<string, RegisteredMethod>>();
  private readonly connections = new Set<Connection>();
  /** Connections whose unfinished frame waits for budget, first come first served. */
  private readonly waiting = new Set<Connection>();
  private claimed = 0;
  private readonly maxBufferedBytes: number;
  private readonly frameTimeoutMs: number;
  private readonly errorToStatus: (err: unknown) => RpcStatus;
  private server: Server | undefined;
  private listenPath: string | undefined;

  constructor(private readonly options: TtrpcServerOptions = {}) {
    this.errorToStatus = options.errorToStatus ?? defaultErrorToStatus;
    this.maxBufferedBytes = options.maxBufferedBytes ?? DEFAULT_MAX_BUFFERED_BYTES;
    // Smaller, and a frame of the largest size could never be read.
    if (this.maxBufferedBytes < FRAME_HEADER_LENGTH + MAX_FRAME_PAYLOAD) {
      throw new RangeError(`maxBufferedBytes ${this.maxBufferedBytes} is below one frame of ${FRAME_HEADER_LENGTH + MAX_FRAME_PAYLOAD} bytes`);
    }
    this.frameTimeoutMs = options.frameTimeoutMs ?? DEFAULT_FRAME_TIMEOUT_MS;
  }

  /** Bytes of the buffering budget that unfinished frames hold now (for tests and metrics). */
  get bufferedBytes(): number {
    return this.claimed;
  }

  /** Connections open now. */
  get connectionCount(): number {
    return this.connections.size;
  }

  /** The socket path once listening. */
  get address(): string | undefined {
    return this.listenPath;
  }

  /**
   * Registers handlers of a service of the Root, by method name. Every handler must name a unary method of the
   * service; methods without a handler answer UNIMPLEMENTED. Registering a service again replaces its handlers.
   */
  register<S extends ServiceName>(service: S, handlers: Partial<Services[S]['handlers']>): void;
  register(service: string, handlers: Readonly<Record<string, TtrpcUnaryHandler>>): void;
  register(service: string, handlers: object): void {
    const methods = serviceMethods(service);
    const table = new Map<string, RegisteredMethod>();
    for (const [name, handler] of Object.entries(handlers)) {
      if (typeof handler !== 'function') continue;
      const method = methods.find((m) => m.name === name);
      if (!method) throw new Error(`method ${service}.${name}: not found`);
      if (method.requestStream || method.responseStream) {
        throw new Error(`method ${service}.${name}: streaming is not supported by ttrpc 1.1`);
      }
      table.set(name, { method, handler: handler as TtrpcUnaryHandler });
    }
    this.services.set(service, table);
  }

  /**
   * Listens on a unix socket path. A socket file nobody listens on any more is replaced; a live socket or any other
   * kind of file makes listen fail (EADDRINUSE).
   */
  async listen(path: string, options: { backlog?: number } = {}): Promise<void> {
    if (this.server) throw new Error(`ttrpc server already listening on ${this.listenPath}`);
    await removeStaleSocket(path);
    // Paused on connect: nothing is read from a socket before authorizePeer has accepted it.
    const server = createServer({ pauseOnConnect: true }, (socket) => this.accept(socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ path, backlog: options.backlog }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (err) => this.options.onError?.(err));
    this.server = server;
    this.listenPath = path;
  }

  /** Stops listening, aborts in-flight handlers' signals and destroys every connection. */
  async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const conn of this.connections) {
      for (const ac of conn.inFlight) ac.abort();
      conn.socket.destroy();
      this.release(conn);
    }
    this.connections.clear();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private accept(socket: Socket): void {
    if (!this.authorized(socket)) {
      socket.destroy();
      return;
    }
    const conn: Connection = { socket, inFlight: new Set(), decoder: new FrameDecoder(), claimed: 0, wanted: 0, paused: new Set() };
    this.connections.add(conn);
    socket.on('data', (chunk: Buffer) => {
      let frames: DecodedFrame[];
      try {
        frames = conn.decoder.push(chunk);
      } catch (err) {
        this.options.onError?.(err);
        socket.destroy();
        return;
      }
      this.account(conn, frames.length > 0);
      for (const frame of frames) this.onFrame(conn, frame);
    });
    socket.on('drain', () => this.resume(conn, 'drain'));
    socket.on('error', (err) => this.options.onError?.(err));
    socket.on('close', () => {
      for (const ac of conn.inFlight) ac.abort();
      conn.inFlight.clear();
      this.connections.delete(conn);
      this.release(conn);
    });
    // While others wait for budget, a new connection queues behind them unread; otherwise it is read at once.
    if (this.waiting.size > 0) {
      conn.paused.add('budget');
      this.waiting.add(conn);
    } else {
      socket.resume();
    }
  }

  private authorized(socket: Socket): boolean {
    if (!this.options.authorizePeer) return true;
    try {
      return this.options.authorizePeer(socket);
    } catch (err) {
      this.options.onError?.(err);
      return false;
    }
  }

  /**
   * Brings the connection's claim on the budget in line with what its unfinished frame needs, after a read. A
   * frame that does not fit stops the connection being read (the kernel holds the rest) until it does. The frame
   * timer runs while a claimed frame is incomplete and restarts when a frame completes.
   */
  private account(conn: Connection, completedFrames: boolean): void {
    const need = conn.decoder.pendingFrameBytes;
    if (completedFrames || need === 0) this.stopFrameTimer(conn);
    if (this.waiting.has(conn)) {
      // Still queued: these are bytes read before the pause took effect (at most a chunk or two).
      conn.wanted = need;
      return;
    }
    const freed = conn.claimed > need;
    this.claimed += need - conn.claimed;
    conn.claimed = need;
    if (this.claimed > this.maxBufferedBytes) {
      // The new frame does not fit: give its claim back and queue it.
      this.claimed -= need;
      conn.claimed = 0;
      conn.wanted = need;
      this.waiting.add(conn);
      this.pause(conn, 'budget');
    } else if (need > 0 && !conn.frameTimer) {
      this.startFrameTimer(conn);
    }
    if (freed) this.admitWaiting();
  }

  /** Gives back everything the connection held (it closed) and lets waiting connections in. */
  private release(conn: Connection): void {
    this.stopFrameTimer(conn);
    this.waiting.delete(conn);
    this.claimed -= conn.claimed;
    conn.claimed = 0;
    conn.wanted = 0;
    conn.decoder.clear();
    this.admitWaiting();
  }

  /** Admits waiting connections in arrival order while the first one's frame fits. */
  private admitWaiting(): void {
    for (const conn of this.waiting) {
      if (this.claimed + conn.wanted > this.maxBufferedBytes) return;
      this.waiting.delete(conn);
      this.claimed += conn.wanted;
      conn.claimed = conn.wanted;
      conn.wanted = 0;
      if (conn.claimed > 0) this.startFrameTimer(conn);
      this.resume(conn, 'budget');
    }
  }

  private startFrameTimer(conn: Connection): void {
    this.stopFrameTimer(conn);
    conn.frameTimer = setTimeout(() => {
      conn.frameTimer = undefined;
      this.options.onError?.(
        new Error(`ttrpc: a frame of ${conn.decoder.pendingFrameBytes} bytes was not completed within ${this.frameTimeoutMs} ms; closing the connection`),
      );
      conn.socket.destroy();
    }, this.frameTimeoutMs);
    conn.frameTimer.unref();
  }

  private stopFrameTimer(conn: Connection): void {
    if (conn.frameTimer) clearTimeout(conn.frameTimer);
    conn.frameTimer = undefined;
  }

  private pause(conn: Connection, why: 'budget' | 'drain'): void {
    if (conn.paused.size === 0) conn.socket.pause();
    conn.paused.add(why);
  }

  private resume(conn: Connection, why: 'budget' | 'drain'): void {
    if (!conn.paused.delete(why) || conn.paused.size > 0 || conn.socket.destroyed) return;
    conn.socket.resume();
  }

  private onFrame(conn: Connection, frame: DecodedFrame): void {
    const { streamId } = frame.header;
    if (frame.kind === 'oversized') {
      this.reply(conn, streamId, {
        code: StatusCode.RESOURCE_EXHAUSTED,
        message: `message length ${frame.header.length} exceed maximum message size of ${MAX_FRAME_PAYLOAD}`,
      });
      return;
    }
    if (frame.header.type !== FrameType.Request) return; // other types are ignored, as ttrpc does
    let request: ttrpc.Request;
    try {
      request = requestCodec().decode(frame.payload);
    } catch (err) {
      this.reply(conn, streamId, {
        code: StatusCode.INVALID_ARGUMENT,
        message: `unmarshal request error: ${(err as Error).message}`,
      });
      return;
    }
    if (streamId % 2 !== 1) {
      this.reply(conn, streamId, {
        code: StatusCode.INVALID_ARGUMENT,
        message: 'StreamID must be odd for client initiated streams',
      });
      return;
    }
    // A reply that cannot be sent (the connection broke meanwhile) is the connection's problem, not the daemon's.
    this.dispatch(conn, streamId, request).catch((err: unknown) => this.options.onError?.(err));
  }

  private async dispatch(conn: Connection, streamId: number, request: ttrpc.Request): Promise<void> {
    const table = this.services.get(request.service);
    if (!table) {
      this.reply(conn, streamId, { code: StatusCode.UNIMPLEMENTED, message: `service ${request.service}` });
      return;
    }
    const entry = table.get(request.method);
    if (!entry) {
      this.reply(conn, streamId, { code: StatusCode.UNIMPLEMENTED, message: `method ${request.method}` });
      return;
    }
    let decoded: unknown;
    try {
      decoded = messageCodec(entry.method.requestType).decode(request.payload);
    } catch (err) {
      this.reply(conn, streamId, {
        code: StatusCode.INTERNAL,
        message: `ttrpc: error unmarshalling payload: ${(err as Error).message}`,
      });
      return;
    }
    const ac = new AbortController();
    conn.inFlight.add(ac);
    let timer: NodeJS.Timeout | undefined;
    if (request.timeout_nano > 0) {
      const ms = Math.max(1, Math.ceil(request.timeout_nano / 1e6));
      // setTimeout caps at 2^31-1 ms; longer deadlines are effectively none.
      if (ms < 2 ** 31) timer = setTimeout(() => ac.abort(new DOMException('deadline exceeded', 'TimeoutError')), ms);
    }
    const ctx: RpcContext = { metadata: Object.freeze(firstValues(request.metadata)), signal: ac.signal };
    try {
      const result = await entry.handler(decoded, ctx);
      let payload: Buffer;
      try {
        payload = messageCodec(entry.method.responseType).encode(result ?? {});
      } catch (err) {
        this.reply(conn, streamId, {
          code: StatusCode.INTERNAL,
          message: `ttrpc: error marshaling payload: ${(err as Error).message}`,
        });
        return;
      }
      this.reply(conn, streamId, undefined, payload);
    } catch (err) {
      this.reply(conn, streamId, this.statusOf(err));
    } finally {
      if (timer) clearTimeout(timer);
      conn.inFlight.delete(ac);
    }
  }

  private statusOf(err: unknown): RpcStatus {
    try {
      const status = this.errorToStatus(err);
      if (status.code !== StatusCode.OK) return status;
    } catch (mapErr) {
      this.options.onError?.(mapErr);
    }
    return defaultErrorToStatus(err);
  }

  private reply(conn: Connection, streamId: number, status: RpcStatus | undefined, payload?: Buffer): void {
    if (conn.socket.destroyed || !conn.socket.writable) return;
    let body = responseCodec().encode({ status: status ?? null, payload: payload ?? null });
    if (body.length > MAX_FRAME_PAYLOAD) {
      body = responseCodec().encode({
        status: {
          code: StatusCode.RESOURCE_EXHAUSTED,
          message: `message length ${body.length} exceed maximum message size of ${MAX_FRAME_PAYLOAD}`,
        },
      });
    }
    // A client that does not read its answers stops being read itself, so they cannot pile up here.
    if (!conn.socket.write(encodeFrame(streamId, FrameType.Response, body))) this.pause(conn, 'drain');
  }
}

/** Removes a socket file nobody listens on any more. A live socket is left alone and listen then fails. */
async function removeStaleSocket(path: string): Promise<void> {
  let isSocket: boolean;
  try {
    isSocket = (await lstat(path)).isSocket();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  if (!isSocket) return;
  const live = await new Promise<boolean>((resolve) => {
    const probe = createConnection({ path });
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
  if (!live) await unlink(path);
}
