/**
 * Transport-neutral service implementations. A gRPC service plugin provides handlers keyed by the full service name
 * and method name; the daemon binds them to grpc-js (and ttrpc) and maps thrown errdefs to status codes. Plugins
 * never import a transport.
 */
export interface RpcContext {
  /** Request metadata, lower-case keys, first value of each. */
  readonly metadata: Readonly<Record<string, string>>;
  /** Aborted when the client cancels or disconnects. */
  readonly signal: AbortSignal;
}

export type UnaryHandler<I, O> = (request: I, ctx: RpcContext) => Promise<O>;
export type ServerStreamHandler<I, O> = (request: I, ctx: RpcContext) => AsyncIterable<O>;
export type ClientStreamHandler<I, O> = (requests: AsyncIterable<I>, ctx: RpcContext) => Promise<O>;
export type BidiStreamHandler<I, O> = (requests: AsyncIterable<I>, ctx: RpcContext) => AsyncIterable<O>;

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyRpcHandler = (input: any, ctx: RpcContext) => any;

export interface RpcServiceImplementation {
  /** Full protobuf service name, e.g. `containerd.services.namespaces.v1.Namespaces`. */
  readonly service: string;
  readonly handlers: Readonly<Record<string, AnyRpcHandler>>;
  /** Where to serve it; default grpc only. */
  readonly transports?: readonly ('grpc' | 'ttrpc')[];
}

/** What an `io.containerd.grpc.v1` plugin provides. */
export interface RpcServices {
  readonly services: readonly RpcServiceImplementation[];
}
