// What `berth images …` does, over the kind interfaces only (an ImageStore, the namespaced content store, a lease
// manager's create/delete and the snapshotters by name), so that it is tested with real stores in a test host and
// runs unchanged against berthd's proxies. Output is left to images.ts.
import {
  FailedPreconditionError,
  isAlreadyExists,
  isNotFound,
  LEASE_EXPIRE_LABEL,
  type ContentStore,
  type Image,
  type ImageStore,
  type LeaseManager,
  type Mount,
  type OpContext,
  type Snapshotter,
} from '@berth/core';
import {
  checkImage,
  defaultMatcher,
  formatPlatform,
  imagePlatforms,
  imageRootFs,
  imageSize,
  imageTree,
  onlyPlatform,
  parsePlatform,
  type ImageTreeNode,
} from '@berth/images';
import { binarySize, formatRfc3339 } from '../format.js';

/** The roles the image commands use. */
export interface ImageCommandServices {
  readonly images: ImageStore;
  readonly content: ContentStore;
  readonly leases: Pick<LeaseManager, 'create' | 'delete'>;
  snapshotter(name: string): Snapshotter;
}

/** Mounting and unmounting, @berth/sys's in the CLI (a test may stand in for them). */
export interface Mounter {
  mountAll(mounts: readonly Mount[], target: string): Promise<void>;
  unmountAll(target: string): Promise<void>;
}

export function imageJson(img: Image): Record<string, unknown> {
  return { name: img.name, target: img.target, labels: img.labels, createdAt: img.createdAt.toISOString(), updatedAt: img.updatedAt.toISOString() };
}

export interface ImageRow {
  readonly image: Image;
  /** Bytes for the host platform; undefined when content is missing (ctr logs it and prints 0). */
  readonly size: number | undefined;
  readonly platforms: readonly string[];
  readonly problems: readonly string[];
}

/** `images ls`: each image with its size for the host platform and the platforms it is for (as ctr computes them). */
export async function listImages(svc: ImageCommandServices, ctx: OpContext, filters: readonly string[]): Promise<ImageRow[]> {
  const rows: ImageRow[] = [];
  for (const image of await svc.images.list(ctx, filters)) {
    const problems: string[] = [];
    let size: number | undefined;
    let platforms: string[] = [];
    try {
      size = await imageSize(svc.content, ctx, image.target, defaultMatcher());
    } catch (err) {
      problems.push(`failed calculating size for image ${image.name}: ${(err as Error).message}`);
    }
    try {
      platforms = [...new Set((await imagePlatforms(svc.content, ctx, image.target)).map(formatPlatform))].sort();
    } catch (err) {
      problems.push(`failed resolving platform for image ${image.name}: ${(err as Error).message}`);
    }
    rows.push({ image, size, platforms, problems });
  }
  return rows;
}

export interface CheckRow {
  readonly image: Image;
  /** `complete (3/3)`, `incomplete (2/3)`, `unavailable (0/?)` or `error`, as ctr prints it. */
  readonly status: string;
  readonly size: string;
  readonly complete: boolean;
  readonly unpacked: boolean;
  readonly required: number;
  readonly present: number;
  readonly missing: readonly string[];
  readonly problems: readonly string[];
}

/** `images check`: completeness for the host platform and whether the chain is unpacked in `snapshotter`. */
export async function checkImages(svc: ImageCommandServices, ctx: OpContext, filters: readonly string[], snapshotter: string): Promise<CheckRow[]> {
  const rows: CheckRow[] = [];
  for (const image of await svc.images.list(ctx, filters)) {
    const problems: string[] = [];
    let status = 'complete';
    let size = '-';
    let complete = true;
    let counts = { required: 0, present: 0, missing: [] as string[] };
    try {
      const c = await checkImage(svc.content, ctx, image.target, defaultMatcher());
      const sum = (ds: readonly { size: number }[]) => ds.reduce((n, d) => n + d.size, 0);
      counts = { required: c.required.length, present: c.present.length, missing: c.missing.map((d) => d.digest) };
      if (c.missing.length > 0) [status, complete] = ['incomplete', false];
      if (c.available) {
        status += ` (${c.present.length}/${c.required.length})`;
        size = `${binarySize(sum(c.present))}/${binarySize(sum(c.required))}`;
      } else {
        status = `unavailable (${c.present.length}/?)`;
        size = `${binarySize(sum(c.present))}/?`;
        complete = false;
      }
    } catch (err) {
      problems.push(`unable to check ${image.name}: ${(err as Error).message}`);
      [status, complete] = ['error', false];
    }
    let unpacked = false;
    if (complete) {
      try {
        const { chainId } = await imageRootFs(svc.content, ctx, image.target, defaultMatcher());
        await svc.snapshotter(snapshotter).stat(ctx, chainId);
        unpacked = true;
      } catch (err) {
        if (!isNotFound(err)) problems.push(`unable to check unpack for ${image.name}: ${(err as Error).message}`);
      }
    }
    rows.push({ image, status, size, complete, unpacked, ...counts, problems });
  }
  return rows;
}

/** `images inspect`: the record and the index/manifest/config/layer tree (every platform). */
export async function inspectImage(svc: ImageCommandServices, ctx: OpContext, name: string): Promise<{ image: Image; tree: ImageTreeNode }> {
  const image = await svc.images.get(ctx, name);
  return { image, tree: await imageTree(svc.content, ctx, image.target) };
}

/** `images tag`: new names for the target of `source` (`force`: replace a name that exists). */
export async function tagImage(svc: ImageCommandServices, ctx: OpContext, source: string, targets: readonly string[], force: boolean): Promise<Image[]> {
  const src = await svc.images.get(ctx, source);
  const out: Image[] = [];
  for (const name of targets) {
    const input = { name, target: src.target, labels: src.labels };
    try {
      out.push(await svc.images.create(ctx, input));
    } catch (err) {
      if (!force || !isAlreadyExists(err)) throw err;
      out.push(await svc.images.update(ctx, input, ['target', 'labels']));
    }
  }
  return out;
}

/** `images rm`: removes each; NotFound is a warning (as ctr), other failures fail the command at the end. */
export async function removeImages(
  svc: ImageCommandServices,
  ctx: OpContext,
  names: readonly string[],
  sync: boolean,
): Promise<{ removed: string[]; notFound: string[]; failed: { name: string; error: unknown }[] }> {
  const result = { removed: [] as string[], notFound: [] as string[], failed: [] as { name: string; error: unknown }[] };
  for (const [i, name] of names.entries()) {
    try {
      // As ctr: only the last delete waits for the garbage collector.
      await svc.images.delete(ctx, name, { sync: sync && i === names.length - 1 });
      result.removed.push(name);
    } catch (err) {
      if (isNotFound(err)) result.notFound.push(name);
      else result.failed.push({ name, error: err });
    }
  }
  return result;
}

/** `images label`: `labels` with the field paths labelUpdate made (an empty value removes the label). */
export async function labelImage(svc: ImageCommandServices, ctx: OpContext, name: string, labels: Record<string, string>, paths: readonly string[]): Promise<Image> {
  if (paths.length === 0) return svc.images.get(ctx, name);
  return svc.images.update(ctx, { name, target: (await svc.images.get(ctx, name)).target, labels }, paths);
}

export interface MountOptions {
  readonly snapshotter: string;
  readonly rw: boolean;
  readonly platform?: string;
}

/**
 * `images mount`: as ctr, a lease named after the target (24 h, holding the snapshot), a view (or an active
 * snapshot with `rw`) of the image's unpacked chain, mounted at the target. The image must be unpacked already.
 */
export async function mountImage(svc: ImageCommandServices, mounter: Mounter, ctx: OpContext, ref: string, target: string, options: MountOptions): Promise<string> {
  const image = await svc.images.get(ctx, ref);
  const matcher = options.platform ? onlyPlatform(parsePlatform(options.platform)) : defaultMatcher();
  const { chainId } = await imageRootFs(svc.content, ctx, image.target, matcher);
  const sn = svc.snapshotter(options.snapshotter);
  try {
    await sn.stat(ctx, chainId);
  } catch (err) {
    if (isNotFound(err)) throw new FailedPreconditionError(`image ${ref} is not unpacked in ${options.snapshotter} (chain ${chainId}); unpack it first (ctr images unpack, or pull it with unpacking)`, { cause: err });
    throw err;
  }
  const expires = formatRfc3339(new Date(Date.now() + 24 * 3600_000));
  let leaseCreated = false;
  try {
    await svc.leases.create(ctx, { id: target, labels: { [LEASE_EXPIRE_LABEL]: expires, [`containerd.io/gc.ref.snapshot.${options.snapshotter}`]: target } });
    leaseCreated = true;
  } catch (err) {
    if (!isAlreadyExists(err)) throw err;
  }
  const lctx = { ...ctx, lease: target };
  try {
    let mounts: Mount[];
    try {
      mounts = options.rw ? await sn.prepare(lctx, target, chainId) : await sn.view(lctx, target, chainId);
    } catch (err) {
      if (!isAlreadyExists(err)) throw err;
      mounts = await sn.mounts(lctx, target);
    }
    try {
      await mounter.mountAll(mounts, target);
    } catch (err) {
      await sn.remove(lctx, target).catch(() => undefined);
      throw err;
    }
  } catch (err) {
    if (leaseCreated) await svc.leases.delete(ctx, target).catch(() => undefined);
    throw err;
  }
  return chainId;
}

/** `images unmount`: unmounts the target; with `rm`, also removes its lease and snapshot (as ctr's --rm). */
export async function unmountImage(svc: ImageCommandServices, mounter: Mounter, ctx: OpContext, target: string, options: { rm: boolean; snapshotter: string }): Promise<void> {
  await mounter.unmountAll(target);
  if (!options.rm) return;
  await svc.leases.delete(ctx, target).catch((err: unknown) => {
    if (!isNotFound(err)) throw err;
  });
  await svc.snapshotter(options.snapshotter).remove(ctx, target).catch((err: unknown) => {
    if (!isNotFound(err)) throw err;
  });
}
