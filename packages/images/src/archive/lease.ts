import { LEASE_EXPIRE_LABEL, type LeaseManager, type OpContext } from '@berth/core';
import { uniquePart } from '../pull.js';

/**
 * Runs `run` under a lease (containerd's client WithLease): the context's own when it carries one, otherwise a new
 * one that expires in 24 h and is deleted afterwards, whether `run` succeeded or not.
 */
export async function withLease<T>(services: { readonly leases: Pick<LeaseManager, 'create' | 'delete'> }, ctx: OpContext, run: (ctx: OpContext) => Promise<T>): Promise<T> {
  if (ctx.lease) return run(ctx);
  const id = uniquePart();
  const expire = new Date(Date.now() + 24 * 3600_000).toISOString().replace(/\.\d{3}Z$/, 'Z');
  await services.leases.create(ctx, { id, labels: { [LEASE_EXPIRE_LABEL]: expire } });
  try {
    return await run({ ...ctx, lease: id });
  } finally {
    await services.leases.delete(ctx, id).catch(() => undefined);
  }
}
