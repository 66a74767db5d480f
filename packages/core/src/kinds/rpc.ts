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

/**
 * Where a plugin's own service is described, when it is not one of berth's (a third party's `io.example.hello.v1`):
 * `.proto` files shipped in the plugin's package. The daemon loads them into a root of their own, checks the service
 * and its methods at the plugin's init, and marks the plugin `error` when they do not match.
 */
export interface ProtoSource {
  /** Absolute paths of the `.proto` files (imports of `google/protobuf/*` are built in). */
  readonly files: readonly string[];
  /** Directories imports are resolved against; default: the directory of the first file. */
  readonly includeDirs?: readonly string[];
}

export interface RpcServiceImplementation {
  /** Full protobuf service name, e.g. `containerd.services.namespaces.v1.Namespaces`. */
  readonly service: string;
  /** The service's own protos; absent for the services of berth's API (packages/api/proto). */
  readonly proto?: ProtoSource;
  readonly handlers: Readonly<Record<string, AnyRpcHandler>>;
  /** Where to serve it; default grpc only. */
  readonly transports?: readonly ('grpc' | 'ttrpc')[];
}

/** What an `io.containerd.grpc.v1` plugin contributes to `rpcServicesPoint`. */
export interface RpcServices {
  readonly services: readonly RpcServiceImplementation[];
}
