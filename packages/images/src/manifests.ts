// Manifests and indexes as JSON documents: parsing with checks (a document that does not match its media type is
// refused, as containerd's validateMediaType does), the children of a descriptor (containerd's images.Children) and
// the `containerd.io/gc.ref.content.*` labels a parent gets for them (images.SetChildrenMappedLabels).
import { DataLossError, InvalidArgumentError, NotImplementedError, validateDigest, type Descriptor } from '@berth/core';
import { isConfigType, isIndexType, isLayerType, isManifestType, isSchema1Type } from './media-types.js';
import type { Platform } from './types.js';

/** A descriptor as manifests and indexes carry it: with the platform of an index entry and the URLs of a foreign layer. */
export interface ImageDescriptor extends Descriptor {
  readonly platform?: Platform;
  readonly urls?: readonly string[];
}

export interface Manifest {
  readonly mediaType?: string;
  readonly config: ImageDescriptor;
  readonly layers: readonly ImageDescriptor[];
  readonly annotations?: Readonly<Record<string, string>>;
}

export interface Index {
  readonly mediaType?: string;
  readonly manifests: readonly ImageDescriptor[];
  readonly annotations?: Readonly<Record<string, string>>;
}

/** What an image config says about its layers and platform (the parts a pull uses). */
export interface ImageConfig {
  readonly os: string;
  readonly architecture: string;
  readonly variant?: string;
  readonly diffIds: readonly string[];
}

/** Manifests, indexes and configs larger than this are refused (containerd's schema 1 limit; nothing real comes near). */
export const MAX_DOCUMENT_SIZE = 8_000_000;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function stringRecord(v: unknown, what: string): Record<string, string> | undefined {
  if (v === undefined || v === null) return undefined;
  if (!isObject(v) || Object.values(v).some((x) => typeof x !== 'string')) throw new InvalidArgumentError(`${what}: expected an object of strings`);
  return v as Record<string, string>;
}

/** Reads one descriptor of a document, checking its digest and size. */
export function parseDescriptor(v: unknown, what: string): ImageDescriptor {
  if (!isObject(v)) throw new InvalidArgumentError(`${what}: expected a descriptor object`);
  const { mediaType, digest, size } = v;
  if (typeof mediaType !== 'string' || mediaType === '') throw new InvalidArgumentError(`${what}: mediaType is required`);
  if (typeof digest !== 'string') throw new InvalidArgumentError(`${what}: digest is required`);
  validateDigest(digest, `${what} digest`);
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) throw new InvalidArgumentError(`${what}: size must be a non-negative integer`);
  const annotations = stringRecord(v.annotations, `${what} annotations`);
  let platform: Platform | undefined;
  if (v.platform !== undefined && v.platform !== null) {
    const p = v.platform;
    if (!isObject(p) || typeof p.os !== 'string' || typeof p.architecture !== 'string') {
      throw new InvalidArgumentError(`${what}: platform needs os and architecture`);
    }
    const features = p['os.features'];
    platform = {
      os: p.os,
      architecture: p.architecture,
      ...(typeof p.variant === 'string' && p.variant !== '' ? { variant: p.variant } : {}),
      ...(typeof p['os.version'] === 'string' && p['os.version'] !== '' ? { osVersion: p['os.version'] } : {}),
      ...(Array.isArray(features) && features.every((f) => typeof f === 'string') && features.length > 0 ? { osFeatures: features as string[] } : {}),
    };
  }
  const urls = Array.isArray(v.urls) && v.urls.every((u) => typeof u === 'string') && v.urls.length > 0 ? (v.urls as string[]) : undefined;
  return {
    mediaType,
    digest,
    size,
    ...(annotations ? { annotations } : {}),
    ...(platform ? { platform } : {}),
    ...(urls ? { urls } : {}),
  };
}

function parseJson(bytes: Uint8Array, what: string): Record<string, unknown> {
  if (bytes.length > MAX_DOCUMENT_SIZE) throw new InvalidArgumentError(`${what}: ${bytes.length} bytes is more than the limit of ${MAX_DOCUMENT_SIZE}`);
  let doc: unknown;
  try {
    doc = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'));
  } catch (err) {
    throw new DataLossError(`${what}: not valid JSON: ${(err as Error).message}`, { cause: err });
  }
  if (!isObject(doc)) throw new DataLossError(`${what}: expected a JSON object`);
  return doc;
}

/** containerd's validateMediaType: the document must be what its descriptor says (a manifest is not an index). */
function checkDocumentType(doc: Record<string, unknown>, mediaType: string, what: string): void {
  if (Array.isArray(doc.fsLayers) && doc.fsLayers.length > 0) throw new InvalidArgumentError(`${what}: media-type: schema 1 not supported`);
  const declared = typeof doc.mediaType === 'string' ? doc.mediaType : '';
  if (isManifestType(mediaType) && ((Array.isArray(doc.manifests) && doc.manifests.length > 0) || isIndexType(declared))) {
    throw new InvalidArgumentError(`${what}: media-type: expected manifest but found index (${mediaType})`);
  }
  if (isIndexType(mediaType) && ((doc.config !== undefined && doc.config !== null) || (Array.isArray(doc.layers) && doc.layers.length > 0) || isManifestType(declared))) {
    throw new InvalidArgumentError(`${what}: media-type: expected index but found manifest (${mediaType})`);
  }
}

export function parseManifest(bytes: Uint8Array, desc: Descriptor): Manifest {
  const what = `manifest ${desc.digest}`;
  const doc = parseJson(bytes, what);
  checkDocumentType(doc, desc.mediaType, what);
  const layers = doc.layers ?? [];
  if (!Array.isArray(layers)) throw new InvalidArgumentError(`${what}: layers must be an array`);
  const annotations = stringRecord(doc.annotations, `${what} annotations`);
  return {
    ...(typeof doc.mediaType === 'string' ? { mediaType: doc.mediaType } : {}),
    config: parseDescriptor(doc.config, `${what} config`),
    layers: layers.map((l, i) => parseDescriptor(l, `${what} layer ${i}`)),
    ...(annotations ? { annotations } : {}),
  };
}

export function parseIndex(bytes: Uint8Array, desc: Descriptor): Index {
  const what = `index ${desc.digest}`;
  const doc = parseJson(bytes, what);
  checkDocumentType(doc, desc.mediaType, what);
  const manifests = doc.manifests ?? [];
  if (!Array.isArray(manifests)) throw new InvalidArgumentError(`${what}: manifests must be an array`);
  const annotations = stringRecord(doc.annotations, `${what} annotations`);
  return {
    ...(typeof doc.mediaType === 'string' ? { mediaType: doc.mediaType } : {}),
    manifests: manifests.map((m, i) => parseDescriptor(m, `${what} manifest ${i}`)),
    ...(annotations ? { annotations } : {}),
  };
}

export function parseImageConfig(bytes: Uint8Array, desc: Descriptor): ImageConfig {
  const what = `image config ${desc.digest}`;
  const doc = parseJson(bytes, what);
  const rootfs = doc.rootfs;
  const diffIds = isObject(rootfs) ? rootfs.diff_ids : undefined;
  if (diffIds !== undefined && diffIds !== null && (!Array.isArray(diffIds) || diffIds.some((d) => typeof d !== 'string'))) {
    throw new InvalidArgumentError(`${what}: rootfs.diff_ids must be an array of digests`);
  }
  const ids = (diffIds ?? []) as string[];
  ids.forEach((d, i) => validateDigest(d, `${what} diff_ids[${i}]`));
  return {
    os: typeof doc.os === 'string' ? doc.os : '',
    architecture: typeof doc.architecture === 'string' ? doc.architecture : '',
    ...(typeof doc.variant === 'string' && doc.variant !== '' ? { variant: doc.variant } : {}),
    diffIds: ids,
  };
}

/**
 * containerd's images.Children: a manifest's config and layers, an index's manifests; layers and configs have none.
 * A schema 1 manifest is not handled here (it is converted first), nor is an unknown type (no children, as containerd).
 */
export function childrenOf(desc: Descriptor, bytes: Uint8Array): ImageDescriptor[] {
  if (isManifestType(desc.mediaType)) {
    const m = parseManifest(bytes, desc);
    return [m.config, ...m.layers];
  }
  if (isIndexType(desc.mediaType)) return [...parseIndex(bytes, desc).manifests];
  if (isSchema1Type(desc.mediaType)) throw new NotImplementedError(`${desc.digest}: schema 1 manifests are converted, not walked`);
  return [];
}

/** Whether a pull reads the blob's bytes to find children (a manifest, an index or a schema 1 manifest). */
export function hasChildren(mediaType: string): boolean {
  return isManifestType(mediaType) || isIndexType(mediaType) || isSchema1Type(mediaType);
}

export const GC_REF_CONTENT = 'containerd.io/gc.ref.content.';

/** containerd's images.ChildGCLabels: the key (or key prefix, ending in '.') a parent labels a child with. */
export function childGcLabel(child: Descriptor): string {
  if (isConfigType(child.mediaType)) return `${GC_REF_CONTENT}config`;
  if (isManifestType(child.mediaType)) return `${GC_REF_CONTENT}m.`;
  if (isLayerType(child.mediaType)) return `${GC_REF_CONTENT}l.`;
  return GC_REF_CONTENT;
}

/**
 * The labels images.SetChildrenMappedLabels puts on a parent for its children: a prefix key gets the child's index
 * among the children with that key (`…m.0`, `…m.1`, `…l.0`); a full key gets a number only from its second use on.
 */
export function childrenLabels(children: readonly Descriptor[]): Record<string, string> {
  const labels: Record<string, string> = {};
  const counts = new Map<string, number>();
  for (const child of children) {
    const key = childGcLabel(child);
    const i = counts.get(key) ?? 0;
    counts.set(key, i + 1);
    labels[i > 0 || key.endsWith('.') ? `${key}${i}` : key] = child.digest;
  }
  return labels;
}
