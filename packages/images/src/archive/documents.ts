// What import and export add to the shared media-type, manifest and platform modules: reading a document from the
// content store, labelling a parent for its children there, and JSON written as Go's encoding/json writes it, so
// that the documents berth writes (indexes, Docker manifests) have the digests containerd's have.
import { InvalidArgumentError, readBlob, type ContentManager, type ContentProvider, type Descriptor, type OpContext } from '@berth/core';
import { childrenLabels, childrenOf, hasChildren, MAX_DOCUMENT_SIZE, parseImageConfig, parseIndex, parseManifest, type ImageDescriptor, type Index, type Manifest } from '../manifests.js';
import { normalizePlatform } from '../platforms.js';
import type { Platform } from '../types.js';

/** containerd's annotation with the full image name (`images.AnnotationImageName`). */
export const ANNOTATION_IMAGE_NAME = 'io.containerd.image.name';
/** The OCI annotation with the reference name (in containerd's exports: the tag only). */
export const ANNOTATION_REF_NAME = 'org.opencontainers.image.ref.name';

/** The bytes of a small document (manifest, index, config) from the content store, refusing one over the limit. */
export async function readDocument(content: ContentProvider, ctx: OpContext, desc: Pick<Descriptor, 'digest' | 'size'>, what: string): Promise<Buffer> {
  if (desc.size > MAX_DOCUMENT_SIZE) throw new InvalidArgumentError(`${what} ${desc.digest} is ${desc.size} bytes, over the limit of ${MAX_DOCUMENT_SIZE}`);
  const parts: Buffer[] = [];
  let length = 0;
  for await (const chunk of readBlob(content, ctx, desc.digest)) {
    length += chunk.length;
    if (length > MAX_DOCUMENT_SIZE) throw new InvalidArgumentError(`${what} ${desc.digest} is over the limit of ${MAX_DOCUMENT_SIZE} bytes`);
    parts.push(chunk);
  }
  return Buffer.concat(parts, length);
}

export async function readIndex(content: ContentProvider, ctx: OpContext, desc: Descriptor): Promise<Index> {
  return parseIndex(await readDocument(content, ctx, desc, 'index'), desc);
}

export async function readManifest(content: ContentProvider, ctx: OpContext, desc: Descriptor): Promise<Manifest> {
  return parseManifest(await readDocument(content, ctx, desc, 'manifest'), desc);
}

/** containerd's images.Children over the content store: reads only what has children. */
export async function children(content: ContentProvider, ctx: OpContext, desc: Descriptor): Promise<ImageDescriptor[]> {
  if (!hasChildren(desc.mediaType)) return [];
  return childrenOf(desc, await readDocument(content, ctx, desc, 'document'));
}

/** The platform of an image's config as containerd's images.Platforms reads it (os and architecture), normalized. */
export async function configPlatform(content: ContentProvider, ctx: OpContext, config: Descriptor): Promise<Platform> {
  const cfg = parseImageConfig(await readDocument(content, ctx, config, 'image config'), config);
  return normalizePlatform({ os: cfg.os, architecture: cfg.architecture });
}

/** containerd's images.SetChildrenLabels on one parent. */
export async function setChildrenLabels(content: ContentManager, ctx: OpContext, parent: Descriptor, kids: readonly Descriptor[]): Promise<void> {
  if (kids.length === 0) return;
  const labels = childrenLabels(kids);
  await content.update(ctx, { digest: parent.digest, labels }, Object.keys(labels).map((k) => `labels.${k}`));
}

/** Go escapes <, > and & (and U+2028/U+2029) inside strings; JSON.stringify does not. */
export function goJson(value: unknown): string {
  return JSON.stringify(value).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

function sortedRecord(r: Readonly<Record<string, string>>): Record<string, string> {
  return Object.fromEntries(Object.entries(r).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** A descriptor in ocispec.Descriptor's field order (maps sorted, empty fields omitted), ready for goJson. */
export function goDescriptor(d: ImageDescriptor): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (d.mediaType) out.mediaType = d.mediaType;
  out.digest = d.digest;
  out.size = d.size;
  if (d.urls?.length) out.urls = d.urls;
  if (d.annotations && Object.keys(d.annotations).length > 0) out.annotations = sortedRecord(d.annotations);
  if (d.platform) {
    const p: Record<string, unknown> = { architecture: d.platform.architecture, os: d.platform.os };
    if (d.platform.osVersion) p['os.version'] = d.platform.osVersion;
    if (d.platform.osFeatures?.length) p['os.features'] = d.platform.osFeatures;
    if (d.platform.variant) p.variant = d.platform.variant;
    out.platform = p;
  }
  return out;
}

/** An image index as containerd's archive package marshals one. */
export function goIndexJson(manifests: readonly ImageDescriptor[]): string {
  return goJson({ schemaVersion: 2, manifests: manifests.map(goDescriptor) });
}
