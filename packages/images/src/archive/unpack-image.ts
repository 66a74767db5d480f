// Unpacking an imported image as ctr does after `ctr images import` (containerd's Image.Unpack): the manifest of
// one platform (the host's by default), its layers applied into a snapshotter under their chain IDs, through the
// unpacker the pull uses. Every layer is in the content store already.
import type { Descriptor, LeaseManager, OpContext } from '@berth/core';
import { resolveManifest } from '../inspect.js';
import { parseImageConfig } from '../manifests.js';
import { defaultMatcher, type PlatformMatcher } from '../platforms.js';
import { DEFAULT_SNAPSHOTTER, uniquePart } from '../pull.js';
import type { ImageServices, Platform } from '../types.js';
import { unpackLayers } from '../unpack.js';
import { configPlatform, readDocument } from './documents.js';
import { withLease } from './lease.js';

export interface UnpackImageOptions {
  /** Whose manifest to unpack (default: the host's, containerd's platforms.Default). */
  readonly matcher?: PlatformMatcher;
  /** Default `overlayfs`, as ctr. */
  readonly snapshotter?: string;
}

export interface UnpackImageResult {
  readonly chainId: string;
  readonly snapshotter: string;
  readonly platform: Platform;
}

export async function unpackImage(
  services: Pick<ImageServices, 'content' | 'snapshotters' | 'applier'> & { readonly leases: Pick<LeaseManager, 'create' | 'delete'> },
  ctx: OpContext,
  target: Descriptor,
  options: UnpackImageOptions = {},
): Promise<UnpackImageResult> {
  const snapshotterName = options.snapshotter || DEFAULT_SNAPSHOTTER;
  const snapshotter = services.snapshotters.get(snapshotterName);
  return withLease(services, ctx, async (lctx) => {
    const { manifest } = await resolveManifest(services.content, lctx, target, options.matcher ?? defaultMatcher());
    const config = parseImageConfig(await readDocument(services.content, lctx, manifest.config, 'image config'), manifest.config);
    const chainId = await unpackLayers(
      { content: services.content, snapshotter, snapshotterName, applier: services.applier, ctx: lctx, unique: uniquePart },
      manifest.config,
      config,
      manifest.layers.map((descriptor) => ({ descriptor, fetched: Promise.resolve() })),
    );
    return { chainId, snapshotter: snapshotterName, platform: await configPlatform(services.content, lctx, manifest.config) };
  });
}
