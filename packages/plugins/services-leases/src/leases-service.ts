import { randomBytes } from 'node:crypto';
import { implementService, ServiceNames, toTimestamp, type containerd } from '@berth/api';
import {
  opContextOf,
  type GarbageCollectable,
  type GarbageCollector,
  type Lease,
  type LeaseManager,
  type LeaseResource,
  type RpcServiceImplementation,
  type RpcServices,
} from '@berth/core';

/**
 * containerd.services.leases.v1.Leases over the lease manager. A Create without an id gets a
 * generated one; a Delete with `sync` returns only after a garbage collection that started after the delete (through
 * the GC scheduler when one is loaded, else by collecting directly when a collectable store is there).
 */
export class LeasesService implements RpcServices {
  readonly services: readonly RpcServiceImplementation[];

  constructor(
    leases: LeaseManager,
    private readonly gc: GarbageCollector | undefined,
    private readonly collectable?: GarbageCollectable,
  ) {
    this.services = [
      implementService(ServiceNames.Leases, {
        Create: async (req, ctx) => {
          const lease = await leases.create(opContextOf(ctx), { id: req.id || generateLeaseId(), labels: { ...req.labels } });
          return { lease: toWireLease(lease) };
        },
        Delete: async (req, ctx) => {
          await leases.delete(opContextOf(ctx), req.id);
          if (req.sync) await this.collect();
        },
        List: async (req, ctx) => ({ leases: (await leases.list(opContextOf(ctx), req.filters)).map(toWireLease) }),
        AddResource: async (req, ctx) => {
          await leases.addResource(opContextOf(ctx), req.id, resourceOf(req.resource));
        },
        DeleteResource: async (req, ctx) => {
          await leases.deleteResource(opContextOf(ctx), req.id, resourceOf(req.resource));
        },
        ListResources: async (req, ctx) => ({
          resources: (await leases.listResources(opContextOf(ctx), req.id)).map(({ id, type }) => ({ id, type })),
        }),
      }),
    ];
  }

  private async collect(): Promise<void> {
    if (this.gc) await this.gc.scheduleAndWait();
    else await this.collectable?.garbageCollect();
  }
}

/** containerd's random lease id: `<nanoseconds of the current second>-<3 random bytes, base64url>`. */
export function generateLeaseId(): string {
  const nanos = Number(process.hrtime.bigint() % 1_000_000_000n);
  return `${nanos}-${randomBytes(3).toString('base64url')}`;
}

function toWireLease(lease: Lease): containerd.services.leases.v1.LeaseInput {
  return { id: lease.id, created_at: toTimestamp(lease.createdAt), labels: lease.labels };
}

/** The wire resource is not optional in containerd's Go API: an absent one is an empty id and type. */
function resourceOf(resource: containerd.services.leases.v1.Resource | null): LeaseResource {
  return { id: resource?.id ?? '', type: resource?.type ?? '' };
}
