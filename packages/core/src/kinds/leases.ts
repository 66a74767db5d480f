import type { Labels, OpContext } from './context.js';

export interface Lease {
  readonly id: string;
  readonly createdAt: Date;
  readonly labels: Labels;
}

/** A resource held by a lease: type `content`, `ingests` or `snapshots/<snapshotter>`. */
export interface LeaseResource {
  readonly id: string;
  readonly type: string;
}

export interface LeaseManager {
  create(ctx: OpContext, lease: { id: string; labels?: Labels }): Promise<Lease>;
  /** With `sync`, returns after garbage collection has run. */
  delete(ctx: OpContext, id: string, options?: { sync?: boolean }): Promise<void>;
  list(ctx: OpContext, filters?: readonly string[]): Promise<Lease[]>;
  addResource(ctx: OpContext, leaseId: string, resource: LeaseResource): Promise<void>;
  deleteResource(ctx: OpContext, leaseId: string, resource: LeaseResource): Promise<void>;
  listResources(ctx: OpContext, leaseId: string): Promise<LeaseResource[]>;
}

export const LEASE_EXPIRE_LABEL = 'containerd.io/gc.expire';
export const LEASE_FLAT_LABEL = 'containerd.io/gc.flat';
