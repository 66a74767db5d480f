import { containerMessage, containersResponse, containerToWire, implementService, publishEvent, ServiceNames, toAnyValue, type containerd, type google } from '@berth/api';
import {
  ContainerTopics,
  InvalidArgumentError,
  namespaceOf,
  opContextOf,
  type Container,
  type ContainerInput,
  type ContainerStore,
  type EventPublisher,
  type Logger,
  type RpcContext,
  type RpcServiceImplementation,
  type RpcServices,
} from '@berth/core';

type WireContainer = containerd.services.containers.v1.Container;

/** The extension event's payload type (berth's proto: packages/api/proto/berth/services/extensions/v1). */
const EXTENSION_UPDATE = 'berth.services.extensions.v1.ContainerExtensionUpdate' as const;

/**
 * containerd.services.containers.v1.Containers over the container store, as containerd 1.6's
 * services/containers/local.go and service.go: Update needs `container.id` (InvalidArgument `Container.ID required`
 * before the store is asked), ListStream sends one container per message, and each successful change publishes
 * `/containers/create|update|delete` (containerd.events.ContainerCreate|ContainerUpdate|ContainerDelete) in the
 * request's namespace. A Create, Update or Delete that changes extensions also publishes
 * `/containers/extensions/update` (berth.services.extensions.v1.ContainerExtensionUpdate) per changed extension.
 */
export class ContainersService implements RpcServices {
  readonly services: readonly RpcServiceImplementation[];

  constructor(
    private readonly containers: ContainerStore,
    private readonly events: EventPublisher,
    private readonly log?: Logger,
  ) {
    this.services = [
      implementService(ServiceNames.Containers, {
        Get: async (req, ctx) => ({ container: containerToWire(await containers.get(opContextOf(ctx), req.id)) }),
        List: async (req, ctx) => containersResponse(await containers.list(opContextOf(ctx), req.filters)),
        ListStream: (req, ctx) => this.listStream(req.filters, ctx),
        Create: async (req, ctx) => {
          const created = await containers.create(opContextOf(ctx), fromWireContainer(req.container));
          const wire = containerToWire(created);
          await this.publish(ctx, ContainerTopics.create, 'containerd.events.ContainerCreate', { id: wire.id, image: wire.image, runtime: wire.runtime });
          await this.publishExtensionChanges(ctx, undefined, created);
          return { container: wire };
        },
        Update: async (req, ctx) => {
          // The namespace first (FailedPrecondition when missing, as for every other method), then the id.
          const op = opContextOf(ctx);
          if (!req.container?.id) throw new InvalidArgumentError('Container.ID required');
          const before = await containers.get(op, req.container.id).catch(() => undefined);
          const updated = await containers.update(op, fromWireContainer(req.container), req.update_mask?.paths ?? []);
          await this.publish(ctx, ContainerTopics.update, 'containerd.events.ContainerUpdate', {
            id: updated.id,
            image: updated.image,
            labels: updated.labels,
            snapshot_key: updated.snapshotKey,
          });
          await this.publishExtensionChanges(ctx, before, updated);
          return { container: containerToWire(updated) };
        },
        Delete: async (req, ctx) => {
          const op = opContextOf(ctx);
          const before = await containers.get(op, req.id).catch(() => undefined);
          await containers.delete(op, req.id);
          await this.publish(ctx, ContainerTopics.delete, 'containerd.events.ContainerDelete', { id: req.id });
          await this.publishExtensionChanges(ctx, before, undefined);
        },
      }),
    ];
  }

  /**
   * containerd 1.6 sends one container per ListContainerMessage. List and ListStream answer with bytes written
   * straight from the stored containers (@berth/api's container-wire.ts): a list of thousands is their hot path.
   */
  private async *listStream(filters: readonly string[], ctx: RpcContext): AsyncIterable<containerd.services.containers.v1.ListContainerMessageInput> {
    for (const container of await this.containers.list(opContextOf(ctx), filters)) yield containerMessage(container);
  }

  /** containerd publishes in the namespace of the request (which every method requires). */
  private async publish<N extends 'containerd.events.ContainerCreate' | 'containerd.events.ContainerUpdate' | 'containerd.events.ContainerDelete'>(
    ctx: RpcContext,
    topic: string,
    type: N,
    event: N extends 'containerd.events.ContainerCreate'
      ? containerd.events.ContainerCreateInput
      : N extends 'containerd.events.ContainerUpdate'
        ? containerd.events.ContainerUpdateInput
        : containerd.events.ContainerDeleteInput,
  ): Promise<void> {
    const namespace = namespaceOf(ctx);
    if (namespace) await publishEvent(this.events, namespace, topic, type, event as never);
  }

  /**
   * One `/containers/extensions/update` per extension whose revision the write moved (or that it removed, with the
   * revision of the value removed). `before` is read just ahead of the write: a concurrent write of the same
   * container in between can make this report a change twice, never miss the one this write made.
   */
  private async publishExtensionChanges(ctx: RpcContext, before: Container | undefined, after: Container | undefined): Promise<void> {
    const namespace = namespaceOf(ctx);
    if (!namespace) return;
    const id = (after ?? before)?.id ?? '';
    const old = new Map(Object.entries(before?.extensionRevisions ?? {}));
    const now = new Map(Object.entries(after?.extensionRevisions ?? {}));
    for (const [name, revision] of now) {
      if (old.get(name) !== revision) await this.publishExtension(namespace, { container_id: id, name, revision, deleted: false });
    }
    for (const [name, revision] of old) {
      if (!now.has(name)) await this.publishExtension(namespace, { container_id: id, name, revision, deleted: true });
    }
  }

  private async publishExtension(namespace: string, event: { container_id: string; name: string; revision: number; deleted: boolean }): Promise<void> {
    try {
      await publishEvent(this.events, namespace, ContainerTopics.extensionUpdate, EXTENSION_UPDATE, event);
    } catch (err) {
      // The change is committed; a failed publish must not turn the call into an error the client retries.
      this.log?.warn('publishing an extension update failed', { namespace, ...event, error: err });
    }
  }
}

function anyOf(value: google.protobuf.Any | null | undefined) {
  return value ? toAnyValue(value) : undefined;
}


/** The wire container as the store takes it; an absent container is an empty one, which the store refuses. */
export function fromWireContainer(c: WireContainer | null | undefined): ContainerInput {
  const options = anyOf(c?.runtime?.options);
  const spec = anyOf(c?.spec);
  return {
    id: c?.id ?? '',
    labels: { ...c?.labels },
    image: c?.image ?? '',
    ...(c?.runtime ? { runtime: { name: c.runtime.name ?? '', ...(options ? { options } : {}) } } : {}),
    ...(spec ? { spec } : {}),
    snapshotter: c?.snapshotter ?? '',
    snapshotKey: c?.snapshot_key ?? '',
    extensions: Object.fromEntries(Object.entries(c?.extensions ?? {}).map(([name, value]) => [name, toAnyValue(value)])),
  };
}
