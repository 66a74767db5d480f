import { implementService, publishEvent, ServiceNames, toTimestamp, type containerd } from '@berth/api';
import {
  InvalidArgumentError,
  namespaceOf,
  opContextOf,
  type Descriptor,
  type EventPublisher,
  type GarbageCollector,
  type Image,
  type ImageInput,
  type ImageStore,
  type Labels,
  type RpcContext,
  type RpcServiceImplementation,
  type RpcServices,
} from '@berth/core';

type WireImage = containerd.services.images.v1.Image;
type WireImageInput = containerd.services.images.v1.ImageInput;

/**
 * containerd.services.images.v1.Images over the image store, as containerd 1.6's services/images/local.go: Create
 * and Update need `image.name` (InvalidArgument `Image.Name required` before the store is asked), each successful
 * change publishes `/images/create|update|delete` in the request's namespace (type URLs
 * `containerd.services.images.v1.ImageCreate|ImageUpdate|ImageDelete`, where containerd 1.6 registers them), and a
 * Delete with `sync` returns after a garbage collection that started after the delete.
 */
export class ImagesService implements RpcServices {
  readonly services: readonly RpcServiceImplementation[];

  constructor(
    private readonly images: ImageStore,
    private readonly events: EventPublisher,
    private readonly gc?: GarbageCollector,
  ) {
    this.services = [
      implementService(ServiceNames.Images, {
        Get: async (req, ctx) => ({ image: toWireImage(await images.get(opContextOf(ctx), req.name)) }),
        List: async (req, ctx) => ({ images: (await images.list(opContextOf(ctx), req.filters)).map(toWireImage) }),
        Create: async (req, ctx) => {
          const created = await images.create(opContextOf(ctx), fromWireImage(req.image));
          await this.publish(ctx, '/images/create', 'containerd.services.images.v1.ImageCreate', { name: created.name, labels: created.labels });
          return { image: toWireImage(created) };
        },
        Update: async (req, ctx) => {
          const paths = req.update_mask?.paths ?? [];
          const updated = await images.update(opContextOf(ctx), fromWireImage(req.image), paths);
          await this.publish(ctx, '/images/update', 'containerd.services.images.v1.ImageUpdate', { name: updated.name, labels: updated.labels });
          return { image: toWireImage(updated) };
        },
        Delete: async (req, ctx) => {
          const op = opContextOf(ctx);
          // Without a scheduler the store collects by itself; with one, the scheduler runs it (and coalesces).
          await images.delete(op, req.name, { sync: req.sync && !this.gc });
          await this.publish(ctx, '/images/delete', 'containerd.services.images.v1.ImageDelete', { name: req.name });
          if (req.sync && this.gc) await this.gc.scheduleAndWait();
        },
      }),
    ];
  }

  /** containerd publishes in the namespace of the request (which every method requires). */
  private async publish(
    ctx: RpcContext,
    topic: string,
    type: 'containerd.services.images.v1.ImageCreate' | 'containerd.services.images.v1.ImageUpdate' | 'containerd.services.images.v1.ImageDelete',
    event: { name: string; labels?: Labels },
  ): Promise<void> {
    const namespace = namespaceOf(ctx);
    if (namespace) await publishEvent(this.events, namespace, topic, type, event);
  }
}

export function toWireImage(image: Image): WireImageInput {
  const t = image.target;
  return {
    name: image.name,
    labels: image.labels,
    target: { media_type: t.mediaType, digest: t.digest, size: t.size, annotations: t.annotations ?? {} },
    created_at: toTimestamp(image.createdAt),
    updated_at: toTimestamp(image.updatedAt),
  };
}

/** The wire image as the store takes it; an absent image or target is empty fields, which the store refuses. */
export function fromWireImage(image: WireImage | null | undefined): ImageInput & { readonly target: Descriptor } {
  if (!image?.name) throw new InvalidArgumentError('Image.Name required');
  const t = image.target;
  return {
    name: image.name,
    labels: { ...image.labels },
    target: { mediaType: t?.media_type ?? '', digest: t?.digest ?? '', size: Number(t?.size ?? 0), annotations: { ...t?.annotations } },
  };
}
