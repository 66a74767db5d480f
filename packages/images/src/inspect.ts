// What an image is made of, read from the content store as containerd's images package reads it: the manifest for
// a platform (images.Manifest), the size (Image.Size), the platforms (images.Platforms), completeness
// (images.Check), the root filesystem's diff IDs and chain ID (Image.RootFS), and the whole tree for inspection.
import { isNotFound, NotFoundError, type ContentProvider, type Descriptor, type OpContext } from '@berth/core';
import { children, configPlatform, readDocument, readIndex, readManifest } from './archive/documents.js';
import { chainIds } from './identity.js';
import { parseImageConfig, type ImageDescriptor, type Manifest } from './manifests.js';
import { isIndexType, isManifestType } from './media-types.js';
import { formatPlatform, type PlatformMatcher } from './platforms.js';
import type { Platform } from './types.js';

/** The manifest of `target` for the best-ranked matching platform (containerd's images.Manifest), with its descriptor. */
export async function resolveManifest(
  content: ContentProvider,
  ctx: OpContext,
  target: Descriptor,
  matcher: PlatformMatcher,
): Promise<{ descriptor: ImageDescriptor; manifest: Manifest }> {
  const visit = async (desc: ImageDescriptor, fromIndex: boolean): Promise<{ descriptor: ImageDescriptor; manifest: Manifest } | undefined> => {
    if (isManifestType(desc.mediaType)) {
      // As containerd: the image's own manifest is taken whatever its platform; one from an index must match.
      if (fromIndex && desc.platform && !matcher.match(desc.platform)) return undefined;
      const manifest = await readManifest(content, ctx, desc);
      if (fromIndex && !desc.platform && !matcher.match(await configPlatform(content, ctx, manifest.config))) return undefined;
      return { descriptor: desc, manifest };
    }
    if (isIndexType(desc.mediaType)) {
      const candidates = (await readIndex(content, ctx, desc)).manifests.filter((m) => !m.platform || matcher.match(m.platform));
      candidates.sort((a, b) => (!a.platform ? (b.platform ? 1 : 0) : !b.platform ? -1 : matcher.compare(a.platform, b.platform)));
      for (const c of candidates) {
        const found = await visit(c, true);
        if (found) return found;
      }
    }
    return undefined;
  };
  const found = await visit(target, false);
  if (!found) throw new NotFoundError(`manifest ${target.digest}: not found`);
  return found;
}

/** Bytes of the image for the platforms matched: every descriptor walked (containerd's Image.Size). */
export async function imageSize(content: ContentProvider, ctx: OpContext, target: Descriptor, matcher: PlatformMatcher): Promise<number> {
  let total = 0;
  const walk = async (desc: ImageDescriptor): Promise<void> => {
    total += desc.size;
    for (const kid of await children(content, ctx, desc)) if (!kid.platform || matcher.match(kid.platform)) await walk(kid);
  };
  await walk(target);
  return total;
}

/** The platforms an image is for (containerd's images.Platforms): index entries' platforms, or the config's. */
export async function imagePlatforms(content: ContentProvider, ctx: OpContext, target: Descriptor): Promise<Platform[]> {
  const out: Platform[] = [];
  const walk = async (desc: ImageDescriptor): Promise<void> => {
    if (desc.platform) {
      out.push(desc.platform);
      return;
    }
    if (isIndexType(desc.mediaType)) for (const m of (await readIndex(content, ctx, desc)).manifests) await walk(m);
    else if (isManifestType(desc.mediaType)) out.push(await configPlatform(content, ctx, (await readManifest(content, ctx, desc)).config));
  };
  await walk(target);
  return out;
}

export interface ImageCheck {
  /** False when the manifest for the platform cannot be read (then required is the target only). */
  readonly available: boolean;
  readonly required: readonly ImageDescriptor[];
  readonly present: readonly ImageDescriptor[];
  readonly missing: readonly ImageDescriptor[];
}

/** containerd's images.Check: whether the config and layers of the platform's manifest are in the content store. */
export async function checkImage(content: ContentProvider, ctx: OpContext, target: Descriptor, matcher: PlatformMatcher): Promise<ImageCheck> {
  let manifest: Manifest;
  try {
    manifest = (await resolveManifest(content, ctx, target, matcher)).manifest;
  } catch (err) {
    if (isNotFound(err)) return { available: false, required: [target], present: [], missing: [target] };
    throw err;
  }
  const required = [manifest.config, ...manifest.layers];
  const present: ImageDescriptor[] = [];
  const missing: ImageDescriptor[] = [];
  for (const d of required) {
    try {
      await content.info(ctx, d.digest);
      present.push(d);
    } catch (err) {
      if (!isNotFound(err)) throw err;
      missing.push(d);
    }
  }
  return { available: true, required, present, missing };
}

/** The diff IDs of the platform's root filesystem and its chain ID (what an unpacked image is committed as). */
export async function imageRootFs(
  content: ContentProvider,
  ctx: OpContext,
  target: Descriptor,
  matcher: PlatformMatcher,
): Promise<{ diffIds: readonly string[]; chainId: string; manifest: Manifest }> {
  const { manifest } = await resolveManifest(content, ctx, target, matcher);
  const config = parseImageConfig(await readDocument(content, ctx, manifest.config, 'image config'), manifest.config);
  const ids = chainIds(config.diffIds);
  return { diffIds: config.diffIds, chainId: ids.at(-1) ?? '', manifest };
}

/** One node of `berth images inspect`: a descriptor, whether its blob is here, and what it refers to. */
export interface ImageTreeNode {
  readonly descriptor: ImageDescriptor;
  readonly present: boolean;
  readonly children: readonly ImageTreeNode[];
}

/** The whole tree under `target` (every platform), missing blobs shown as absent rather than failing. */
export async function imageTree(content: ContentProvider, ctx: OpContext, target: ImageDescriptor): Promise<ImageTreeNode> {
  let present = true;
  let kids: ImageDescriptor[] = [];
  try {
    await content.info(ctx, target.digest);
    kids = await children(content, ctx, target);
  } catch (err) {
    if (!isNotFound(err)) throw err;
    present = false;
  }
  const nodes: ImageTreeNode[] = [];
  for (const kid of kids) nodes.push(await imageTree(content, ctx, kid));
  return { descriptor: target, present, children: nodes };
}

/** The tree as indented text: media type, digest, size, platform, and `(missing)` where the blob is absent. */
export function formatImageTree(node: ImageTreeNode, indent = ''): string {
  const d = node.descriptor;
  const platform = d.platform ? ` ${formatPlatform(d.platform)}` : '';
  let out = `${indent}${d.mediaType} ${d.digest} ${d.size}${platform}${node.present ? '' : ' (missing)'}\n`;
  for (const kid of node.children) out += formatImageTree(kid, `${indent}  `);
  return out;
}
