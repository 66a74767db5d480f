/** Per-call options of the generated `<Service>Client` interfaces, for any transport (gRPC or ttrpc). */
export interface RpcCallOptions {
  /** Request metadata; a key may carry several values. Keys are sent lower-cased. */
  readonly metadata?: Readonly<Record<string, string | readonly string[]>>;
  /** Cancels the call. */
  readonly signal?: AbortSignal;
  /** Deadline relative to the start of the call, in milliseconds. */
  readonly timeoutMs?: number;
}
