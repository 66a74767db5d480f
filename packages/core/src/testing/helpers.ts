/** Small helpers every plugin's tests need, so that no package keeps its own copy. */
import { expect } from 'vitest';
import { errdefOf, type Errdef } from '../errdefs/index.js';
import { LEASE_METADATA_KEY, NAMESPACE_METADATA_KEY } from '../kinds/rpc-context.js';
import type { RpcContext, RpcServiceImplementation } from '../kinds/rpc.js';
import { rpcServicesPoint } from '../kinds/tokens.js';
import type { PluginHost } from '../registry/host.js';

export { sha256Digest as sha256 } from '../digest/digest.js';
export { override } from '../registry/token.js';

export interface RpcContextOptions {
  readonly namespace?: string;
  readonly lease?: string;
  /** Further request metadata (lower-case keys). */
  readonly metadata?: Readonly<Record<string, string>>;
  readonly signal?: AbortSignal;
}

/** The RpcContext a transport hands a handler, as berthd builds it from gRPC metadata. */
export function rpcContext(options: RpcContextOptions = {}): RpcContext {
  return {
    metadata: {
      ...(options.namespace !== undefined ? { [NAMESPACE_METADATA_KEY]: options.namespace } : {}),
      ...(options.lease !== undefined ? { [LEASE_METADATA_KEY]: options.lease } : {}),
      ...options.metadata,
    },
    signal: options.signal ?? new AbortController().signal,
  };
}

/** How a promise failed: its error class and message. Throws when it resolves. */
export async function failureOf(promise: Promise<unknown>): Promise<{ errdef: Errdef; message: string }> {
  try {
    await promise;
  } catch (err) {
    return { errdef: errdefOf(err), message: (err as Error).message };
  }
  throw new Error('expected a failure, but the promise resolved');
}

/**
 * Expects `promise` to reject with an error of class `errdef` (walking causes, as the predicates do), whose message
 * contains `message` when given; returns the error for further checks.
 */
export async function expectFailure(promise: Promise<unknown>, errdef: Errdef, message?: string | RegExp): Promise<Error> {
  const outcome = await promise.then(
    (value: unknown) => ({ resolved: true as const, value }),
    (error: unknown) => ({ resolved: false as const, error }),
  );
  if (outcome.resolved) expect.fail(`expected a ${errdef} failure, but it resolved with ${JSON.stringify(outcome.value)}`);
  const err = outcome.error as Error;
  expect(errdefOf(err), `error class of: ${String(err?.message ?? err)}`).toBe(errdef);
  if (typeof message === 'string') expect(err.message).toContain(message);
  else if (message) expect(err.message).toMatch(message);
  return err;
}

/** The implementation of one gRPC/ttrpc service among everything contributed to `rpcServicesPoint` (and on which transport). */
export function rpcService(host: PluginHost, service: string, transport: 'grpc' | 'ttrpc' = 'grpc'): RpcServiceImplementation {
  for (const contribution of host.all(rpcServicesPoint).values()) {
    const found = contribution.services.find((s) => s.service === service && (s.transports ?? ['grpc']).includes(transport));
    if (found) return found;
  }
  throw new Error(`no plugin of this host serves ${service} over ${transport}`);
}
