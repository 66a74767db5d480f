import {
  AlreadyExistsError,
  InvalidArgumentError,
  NotFoundError,
  NotImplementedError,
  parseFilters,
  TimeSlice,
  type Labels,
  type Lease,
  type LeaseManager,
  type LeaseResource,
  type OpContext,
} from '@berth/core';
import type { Database, Records } from './database.js';
import { adaptLabelled, cleanLabels } from './labels.js';
import { ensureNamespace } from './namespaces.js';
import { depth, keys, type Key, type LeaseRecord } from './schema.js';
import { isDigest, validateKeyPart, validateLabels, validateNamespace } from './validate.js';

export function requireNamespace(ctx: OpContext): string {
  validateNamespace(ctx.namespace);
  return ctx.namespace;
}

function leaseNotFound(id: string): NotFoundError {
  return new NotFoundError(`lease "${id}": not found`);
}

/** Where a resource of a lease is recorded; InvalidArgument / NotImplemented for bad types as containerd. */
export function leaseResourceKey(ns: string, leaseId: string, resource: LeaseResource): Key {
  const parts = resource.type.split('/');
  switch (parts[0]) {
    case 'content':
      if (parts.length !== 1) throw new InvalidArgumentError(`invalid resource type ${resource.type}`);
      if (!isDigest(resource.id)) throw new InvalidArgumentError(`invalid content resource id ${resource.id}`);
      return keys.leaseContent(ns, leaseId, resource.id);
    case 'ingests':
      if (parts.length !== 1) throw new InvalidArgumentError(`invalid resource type ${resource.type}`);
      validateKeyPart(resource.id, 'ingest resource id');
      return keys.leaseIngest(ns, leaseId, resource.id);
    case 'snapshots':
      if (parts.length !== 2 || !parts[1]) throw new InvalidArgumentError(`invalid snapshot resource type ${resource.type}`);
      validateKeyPart(resource.id, 'snapshot resource id');
      return keys.leaseSnapshot(ns, leaseId, parts[1], resource.id);
    default:
      throw new NotImplementedError(`resource type ${resource.type} not supported yet`);
  }
}

/** Adds a resource to the context's lease in the running transaction (no-op without a lease). */
export function addToContextLease(records: Records, ctx: OpContext, resource: LeaseResource): void {
  if (!ctx.lease) return;
  if (!records.has(keys.lease(ctx.namespace, ctx.lease))) throw leaseNotFound(ctx.lease);
  records.put(leaseResourceKey(ctx.namespace, ctx.lease, resource), true);
}

/** Removes a resource from the context's lease in the running transaction (no-op without a lease). */
export function removeFromContextLease(records: Records, ctx: OpContext, resource: LeaseResource): void {
  if (!ctx.lease) return;
  records.remove(leaseResourceKey(ctx.namespace, ctx.lease, resource));
}

/** Fails early when the context names a lease that does not exist (before any side effect in the backend). */
export function checkContextLease(records: Records, ctx: OpContext): void {
  if (ctx.lease && !records.has(keys.lease(ctx.namespace, ctx.lease))) throw leaseNotFound(ctx.lease);
}

export function toLease(id: string, record: LeaseRecord): Lease {
  return { id, createdAt: new Date(record.createdAt), labels: { ...record.labels } };
}

export class LmdbLeaseManager implements LeaseManager {
  constructor(private readonly db: Database) {}

  async create(ctx: OpContext, lease: { id: string; labels?: Labels }): Promise<Lease> {
    const ns = requireNamespace(ctx);
    validateKeyPart(lease.id, 'lease id');
    validateLabels(lease.labels);
    const record: LeaseRecord = { createdAt: Date.now(), labels: cleanLabels(lease.labels) };
    await this.db.update((r) => {
      if (r.has(keys.lease(ns, lease.id))) throw new AlreadyExistsError(`lease "${lease.id}": already exists`);
      ensureNamespace(r, ns);
      r.put(keys.lease(ns, lease.id), record);
    });
    return toLease(lease.id, record);
  }

  async delete(ctx: OpContext, id: string): Promise<void> {
    const ns = requireNamespace(ctx);
    await this.db.update((r) => {
      if (!r.has(keys.lease(ns, id))) throw leaseNotFound(id);
      r.removeTree(keys.lease(ns, id));
    }, 'delete');
  }

  /** The matching leases of one LMDB snapshot (Records.scan), yielding to the event loop every few milliseconds. */
  async list(ctx: OpContext, filters: readonly string[] = []): Promise<Lease[]> {
    const ns = requireNamespace(ctx);
    const filter = parseFilters(filters);
    this.db.assertOpen();
    const out: Lease[] = [];
    const slice = new TimeSlice();
    for (const { key, value } of this.db.records.scan<LeaseRecord>(keys.leases(ns), depth.lease)) {
      const lease = toLease(key[3]!, value);
      if (await filter.match(adaptLabelled({ id: lease.id }, lease.labels))) out.push(lease);
      await slice.pause();
    }
    return out;
  }

  async addResource(ctx: OpContext, leaseId: string, resource: LeaseResource): Promise<void> {
    const ns = requireNamespace(ctx);
    const key = leaseResourceKey(ns, leaseId, resource);
    await this.db.update((r) => {
      if (!r.has(keys.lease(ns, leaseId))) throw leaseNotFound(leaseId);
      r.put(key, true);
    });
  }

  async deleteResource(ctx: OpContext, leaseId: string, resource: LeaseResource): Promise<void> {
    const ns = requireNamespace(ctx);
    const key = leaseResourceKey(ns, leaseId, resource);
    await this.db.update((r) => {
      if (!r.has(keys.lease(ns, leaseId))) throw leaseNotFound(leaseId);
      r.remove(key);
    }, 'delete');
  }

  async listResources(ctx: OpContext, leaseId: string): Promise<LeaseResource[]> {
    const ns = requireNamespace(ctx);
    this.db.assertOpen();
    const r = this.db.records;
    if (!r.has(keys.lease(ns, leaseId))) throw leaseNotFound(leaseId);
    return listLeaseResources(r, ns, leaseId);
  }
}

/** The resources of a lease: content, then ingests, then snapshots (containerd's order). */
export function listLeaseResources(records: Records, ns: string, leaseId: string): LeaseResource[] {
  const base = keys.lease(ns, leaseId);
  const out: LeaseResource[] = [];
  for (const { key } of records.entries([...base, 'content'], depth.leaseContent)) out.push({ id: key[5]!, type: 'content' });
  for (const { key } of records.entries([...base, 'ingests'], depth.leaseIngest)) out.push({ id: key[5]!, type: 'ingests' });
  for (const { key } of records.entries([...base, 'snapshots'], depth.leaseSnapshot)) {
    out.push({ id: key[6]!, type: `snapshots/${key[5]!}` });
  }
  return out;
}
