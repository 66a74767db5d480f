import { FailedPreconditionError, InvalidArgumentError } from '../errdefs/errdefs.js';
import { validateIdentifier } from '../identifiers/index.js';
import type { OpContext } from './context.js';
import type { RpcContext } from './rpc.js';

/** The wire's metadata keys, in one place: what containerd clients send, and berth's errdef trailer. */
export const NAMESPACE_METADATA_KEY = 'containerd-namespace';
export const TTRPC_NAMESPACE_METADATA_KEY = 'containerd-namespace-ttrpc';
export const LEASE_METADATA_KEY = 'containerd-lease';
/** Trailing metadata where berthd names the fine-grained errdef of a failed call, for berth's own clients. */
export const ERRDEF_METADATA_KEY = 'berth-errdef';

/** The namespace a request names (gRPC key first, then ttrpc's), or undefined. */
export function namespaceOf(ctx: RpcContext): string | undefined {
  return ctx.metadata[NAMESPACE_METADATA_KEY] || ctx.metadata[TTRPC_NAMESPACE_METADATA_KEY] || undefined;
}

/**
 * The OpContext of a namespaced request, as containerd's NamespaceRequired: a missing namespace is a failed
 * precondition, an invalid one an invalid argument. The lease header, when present, comes along.
 */
export function opContextOf(ctx: RpcContext): OpContext {
  const namespace = namespaceOf(ctx);
  if (!namespace) throw new FailedPreconditionError('namespace is required');
  try {
    validateIdentifier(namespace);
  } catch (err) {
    throw new InvalidArgumentError(`namespace validation: ${(err as Error).message}`, { cause: err });
  }
  const lease = ctx.metadata[LEASE_METADATA_KEY];
  return { namespace, ...(lease ? { lease } : {}), signal: ctx.signal };
}
