// The ImageStore interface of @berth/core over berthd's Images service (containerd's remote image store): a command
// written against imagesToken works the same in-process and against a remote daemon.
import { fromTimestamp, type containerd } from '@berth/api';
import { DataLossError, type Descriptor, type Image, type ImageInput, type ImageStore, type OpContext } from '@berth/core';
import type { BerthClient } from '../client.js';
import { callOptionsOf } from './content-store.js';

type WireImage = containerd.services.images.v1.Image;

const EPOCH = new Date(0);

export function toImage(image: WireImage): Image {
  const t = image.target;
  const annotations = { ...t?.annotations };
  return {
    name: image.name,
    labels: { ...image.labels },
    target: {
      mediaType: t?.media_type ?? '',
      digest: t?.digest ?? '',
      size: Number(t?.size ?? 0),
      ...(Object.keys(annotations).length > 0 ? { annotations } : {}),
    },
    createdAt: fromTimestamp(image.created_at) ?? EPOCH,
    updatedAt: fromTimestamp(image.updated_at) ?? EPOCH,
  };
}

function toWire(image: ImageInput & { readonly target?: Descriptor }): containerd.services.images.v1.ImageInput {
  const t = image.target;
  return {
    name: image.name,
    labels: { ...image.labels },
    ...(t ? { target: { media_type: t.mediaType, digest: t.digest, size: t.size, annotations: { ...t.annotations } } } : {}),
  };
}

function required(image: WireImage | null | undefined, name: string): Image {
  if (!image) throw new DataLossError(`no image returned for ${name}`);
  return toImage(image);
}

/** berthd's images of the context's namespace, every operation an Images call. */
export class ImageStoreProxy implements ImageStore {
  constructor(private readonly client: BerthClient) {}

  async get(ctx: OpContext, name: string): Promise<Image> {
    return required((await this.client.images.Get({ name }, callOptionsOf(ctx))).image, name);
  }

  async list(ctx: OpContext, filters: readonly string[] = []): Promise<Image[]> {
    return (await this.client.images.List({ filters: [...filters] }, callOptionsOf(ctx))).images.map(toImage);
  }

  async create(ctx: OpContext, image: ImageInput): Promise<Image> {
    return required((await this.client.images.Create({ image: toWire(image) }, callOptionsOf(ctx))).image, image.name);
  }

  async update(ctx: OpContext, image: ImageInput & { readonly target?: Descriptor }, fieldpaths?: readonly string[]): Promise<Image> {
    const res = await this.client.images.Update({ image: toWire(image), update_mask: { paths: [...(fieldpaths ?? [])] } }, callOptionsOf(ctx));
    return required(res.image, image.name);
  }

  async delete(ctx: OpContext, name: string, options: { sync?: boolean } = {}): Promise<void> {
    await this.client.images.Delete({ name, sync: options.sync ?? false }, callOptionsOf(ctx));
  }
}
