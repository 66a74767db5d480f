// An ImageStore in memory for unit tests of code that uses one (import, export, the CLI's image commands): the
// errors and field paths of the ImageStore contract, with none of its persistence. Not for production use.
import {
  adaptObject,
  AlreadyExistsError,
  applyLabelUpdate,
  InvalidArgumentError,
  NotFoundError,
  parseFilters,
  type Descriptor,
  type Image,
  type ImageInput,
  type ImageStore,
  type OpContext,
} from '@berth/core';

export interface MemoryImageStore extends ImageStore {
  /** Names deleted with `sync`, in order (what a test checks instead of a garbage collector). */
  readonly syncDeletes: string[];
}

function checkTarget(t: Descriptor | undefined): Descriptor {
  if (!t || !t.mediaType || !t.digest || !(t.size >= 0)) throw new InvalidArgumentError('image target must have a media type, digest and size');
  return { mediaType: t.mediaType, digest: t.digest, size: t.size, ...(t.annotations ? { annotations: { ...t.annotations } } : {}) };
}

export function createMemoryImageStore(): MemoryImageStore {
  const byNs = new Map<string, Map<string, Image>>();
  const ns = (ctx: OpContext) => {
    let m = byNs.get(ctx.namespace);
    if (!m) byNs.set(ctx.namespace, (m = new Map()));
    return m;
  };
  const get = (ctx: OpContext, name: string): Image => {
    const img = ns(ctx).get(name);
    if (!img) throw new NotFoundError(`image ${JSON.stringify(name)}: not found`);
    return img;
  };
  const syncDeletes: string[] = [];
  return {
    syncDeletes,
    async get(ctx, name) {
      return get(ctx, name);
    },
    async list(ctx, filters = []) {
      const f = parseFilters(filters);
      const out: Image[] = [];
      for (const img of ns(ctx).values()) {
        const adaptor = adaptObject({ name: img.name, target: { mediatype: img.target.mediaType, digest: img.target.digest }, labels: img.labels });
        if (await f.match(adaptor)) out.push(img);
      }
      return out.sort((a, b) => (a.name < b.name ? -1 : 1));
    },
    async create(ctx, input: ImageInput) {
      if (!input.name) throw new InvalidArgumentError('image name must not be empty');
      if (ns(ctx).has(input.name)) throw new AlreadyExistsError(`image ${JSON.stringify(input.name)}: already exists`);
      const now = new Date();
      const img: Image = { name: input.name, target: checkTarget(input.target), labels: applyLabelUpdate({}, input.labels, undefined, 'image'), createdAt: now, updatedAt: now };
      ns(ctx).set(img.name, img);
      return img;
    },
    async update(ctx, input, fieldpaths = []) {
      const current = get(ctx, input.name);
      let { labels, target } = current;
      if (fieldpaths.length === 0) {
        labels = applyLabelUpdate({}, input.labels, undefined, 'image');
        target = checkTarget(input.target);
      }
      for (const path of fieldpaths) {
        if (path === 'target') target = checkTarget(input.target);
        else if (path === 'labels' || path.startsWith('labels.')) labels = applyLabelUpdate(labels, input.labels, [path], 'image');
        else if (path === 'annotations') target = { ...target, annotations: { ...input.target?.annotations } };
        else if (path.startsWith('annotations.')) {
          const key = path.slice('annotations.'.length);
          const annotations: Record<string, string> = { ...target.annotations };
          const value = input.target?.annotations?.[key];
          if (value) annotations[key] = value;
          else delete annotations[key];
          target = { ...target, annotations };
        } else throw new InvalidArgumentError(`cannot update ${JSON.stringify(path)} field on image ${JSON.stringify(input.name)}`);
      }
      const img: Image = { ...current, labels, target, updatedAt: new Date() };
      ns(ctx).set(img.name, img);
      return img;
    },
    async delete(ctx, name, options) {
      get(ctx, name);
      ns(ctx).delete(name);
      if (options?.sync) syncDeletes.push(name);
    },
  };
}
