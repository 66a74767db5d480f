import {
  AlreadyExistsError,
  digestProblem,
  InvalidArgumentError,
  NotFoundError,
  parseFilters,
  TimeSlice,
  type Adaptor,
  type Descriptor,
  type Image,
  type ImageInput,
  type ImageStore,
  type Labels,
  type OpContext,
} from '@berth/core';
import type { Database } from './database.js';
import { cleanLabels, labelsField, labelsLostSomething } from './labels.js';
import { requireNamespace } from './leases.js';
import { ensureNamespace } from './namespaces.js';
import { depth, keys, type ImageRecord } from './schema.js';
import { validateKeyPart, validateLabels } from './validate.js';

function imageNotFound(name: string): NotFoundError {
  return new NotFoundError(`image ${JSON.stringify(name)}: not found`);
}

/** The target as stored: annotations without empty values (containerd's boltutil drops them), none when empty. */
function storedTarget(target: Descriptor): ImageRecord['target'] {
  const annotations = cleanLabels(target.annotations);
  return {
    digest: target.digest,
    mediaType: target.mediaType,
    size: target.size,
    ...(Object.keys(annotations).length > 0 ? { annotations } : {}),
  };
}

export function toImage(name: string, record: ImageRecord): Image {
  const { digest, mediaType, size, annotations } = record.target;
  return {
    name,
    labels: { ...record.labels },
    target: { mediaType, digest, size, ...(annotations ? { annotations: { ...annotations } } : {}) },
    createdAt: new Date(record.createdAt),
    updatedAt: new Date(record.updatedAt),
  };
}

/**
 * containerd's validateImage: a name, valid labels and a target with a digest, a size above zero and a media type.
 * The name is also a key part here (at most 1 KiB, no NUL), which bolt's bucket names do not limit.
 */
function validateImage(image: { name: string; labels: Labels; target: Descriptor | undefined }): void {
  if (!image.name) throw new InvalidArgumentError('image name must not be empty');
  validateKeyPart(image.name, 'image name');
  try {
    validateLabels(image.labels);
  } catch (err) {
    throw new InvalidArgumentError(`image.Labels: ${(err as Error).message}`, { cause: err });
  }
  const target = image.target;
  const problem = digestProblem(target?.digest ?? '');
  if (problem) throw new InvalidArgumentError(`Target.Digest ${JSON.stringify(target?.digest ?? '')} invalid: ${problem}`);
  if (!Number.isSafeInteger(target!.size) || target!.size <= 0) {
    throw new InvalidArgumentError('Target.Size must be greater than zero');
  }
  if (!target!.mediaType) throw new InvalidArgumentError('Target.MediaType must be set');
}

/** containerd's adaptImage: `name`, `target.digest`, `target.mediatype`, `labels.<k>`, `annotations.<k>` (the target's). */
export function adaptImage(image: Image): Adaptor {
  return (fieldpath) => {
    const [head, ...rest] = fieldpath;
    const nonEmpty = (s: string): string | undefined => (s === '' ? undefined : s);
    switch (head) {
      case 'name':
        return nonEmpty(image.name);
      case 'target':
        if (rest.length !== 1) return undefined;
        if (rest[0] === 'digest') return nonEmpty(image.target.digest);
        if (rest[0] === 'mediatype') return nonEmpty(image.target.mediaType);
        return undefined;
      case 'labels':
        return labelsField(image.labels, rest);
      case 'annotations':
        return labelsField(image.target.annotations ?? {}, rest);
      default:
        return undefined;
    }
  };
}

/**
 * The images bucket (`['v1', ns, 'images', name] -> ImageRecord`), as containerd 1.6's metadata/images.go: names are
 * unique per namespace, Update takes containerd's field paths, and a delete only removes the record (garbage
 * collection frees what it held; with `sync` the delete returns after a collection).
 */
export class LmdbImageStore implements ImageStore {
  constructor(
    private readonly db: Database,
    /** Runs a garbage collection (a delete with `sync` when no scheduler does it for the caller). */
    private readonly collect: () => Promise<unknown>,
  ) {}

  async get(ctx: OpContext, name: string): Promise<Image> {
    const ns = requireNamespace(ctx);
    this.db.assertOpen();
    const record = name ? this.db.records.get<ImageRecord>(keys.image(ns, name)) : undefined;
    if (!record) throw imageNotFound(name);
    return toImage(name, record);
  }

  /** The matching images of one LMDB snapshot, yielding to the event loop every few milliseconds. */
  async list(ctx: OpContext, filters: readonly string[] = []): Promise<Image[]> {
    const ns = requireNamespace(ctx);
    const filter = parseFilters(filters);
    this.db.assertOpen();
    const out: Image[] = [];
    const slice = new TimeSlice();
    for (const { key, value } of this.db.records.scan<ImageRecord>(keys.images(ns), depth.image)) {
      const image = toImage(key[3]!, value);
      if (await filter.match(adaptImage(image))) out.push(image);
      await slice.pause();
    }
    return out;
  }

  async create(ctx: OpContext, image: ImageInput): Promise<Image> {
    const ns = requireNamespace(ctx);
    const labels = { ...image.labels };
    validateImage({ name: image.name, labels, target: image.target });
    const now = Date.now();
    const record: ImageRecord = { target: storedTarget(image.target), labels: cleanLabels(labels), createdAt: now, updatedAt: now };
    await this.db.update((r) => {
      if (r.has(keys.image(ns, image.name))) throw new AlreadyExistsError(`image ${JSON.stringify(image.name)}: already exists`);
      ensureNamespace(r, ns);
      r.put(keys.image(ns, image.name), record);
    });
    return toImage(image.name, record);
  }

  async update(ctx: OpContext, image: ImageInput & { readonly target?: Descriptor }, fieldpaths: readonly string[] = []): Promise<Image> {
    const ns = requireNamespace(ctx);
    if (!image.name) throw new InvalidArgumentError('image name is required for update');
    validateKeyPart(image.name, 'image name');
    const result = await this.db.update(
      (r) => {
        const key = keys.image(ns, image.name);
        const current = r.get<ImageRecord>(key);
        if (!current) throw imageNotFound(image.name);
        const next = applyImageUpdate(toImage(image.name, current), image, fieldpaths);
        validateImage(next);
        const record: ImageRecord = {
          target: storedTarget(next.target!),
          labels: cleanLabels(next.labels),
          createdAt: current.createdAt,
          updatedAt: Date.now(),
        };
        r.put(key, record);
        // A changed target or a removed gc.ref label can free what the image held: count it for the collector.
        const lost = current.target.digest !== record.target.digest || labelsLostSomething(current.labels, record.labels);
        return { record, lost };
      },
      (res) => (res.lost ? 'delete' : 'write'),
    );
    return toImage(image.name, result.record);
  }

  async delete(ctx: OpContext, name: string, options: { sync?: boolean } = {}): Promise<void> {
    const ns = requireNamespace(ctx);
    await this.db.update((r) => {
      const key = keys.image(ns, name);
      if (!name || !r.has(key)) throw imageNotFound(name);
      r.remove(key);
    }, 'delete');
    if (options.sync) await this.collect();
  }
}

/**
 * containerd's field-path update of an image: `labels`, `labels.<k>` (an absent or empty value removes the label),
 * `target` (replaced whole), `annotations`, `annotations.<k>` (the target's); no paths replace labels and target;
 * any other path is InvalidArgument.
 */
export function applyImageUpdate(
  current: Image,
  incoming: ImageInput & { readonly target?: Descriptor },
  fieldpaths: readonly string[],
): { name: string; labels: Labels; target: Descriptor | undefined } {
  if (fieldpaths.length === 0) return { name: current.name, labels: { ...incoming.labels }, target: incoming.target };
  // Maps, so that keys such as `__proto__` are keys like any other.
  let labels = new Map(Object.entries(current.labels));
  let target: Descriptor | undefined = current.target;
  let annotations = new Map(Object.entries(current.target.annotations ?? {}));
  const given = new Map(Object.entries(incoming.labels ?? {}));
  const givenAnnotations = new Map(Object.entries(incoming.target?.annotations ?? {}));
  for (const path of fieldpaths) {
    if (path.startsWith('labels.')) {
      const k = path.slice('labels.'.length);
      labels.set(k, given.get(k) ?? '');
    } else if (path.startsWith('annotations.')) {
      const k = path.slice('annotations.'.length);
      annotations.set(k, givenAnnotations.get(k) ?? '');
    } else if (path === 'labels') {
      labels = new Map(given);
    } else if (path === 'target') {
      target = incoming.target;
      annotations = new Map(givenAnnotations);
    } else if (path === 'annotations') {
      annotations = new Map(givenAnnotations);
    } else {
      throw new InvalidArgumentError(`cannot update ${JSON.stringify(path)} field on image ${JSON.stringify(current.name)}`);
    }
  }
  return {
    name: current.name,
    labels: Object.fromEntries(labels),
    target: target && { mediaType: target.mediaType, digest: target.digest, size: target.size, annotations: Object.fromEntries(annotations) },
  };
}
