// THE MINIMUM of media types, platforms and manifest walking that import and export need, written before the pull
// engineer's modules (i9-pull: every media type, schema1, platform matching) existed. Keep it apart: when those land,
// this file is replaced by imports from them (the lead merges the two), and nothing else in archive/ changes.
import { hostPlatform, InvalidArgumentError, readBlob, type ContentProvider, type ContentManager, type OpContext } from '@berth/core';
import type { Platform } from '../types.js';

export const MediaTypes = {
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayer: 'application/vnd.docker.image.rootfs.diff.tar',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
} as const;

/** containerd's annotation with the full image name (`images.AnnotationImageName`). */
export const ANNOTATION_IMAGE_NAME = 'io.containerd.image.name';
/** The OCI annotation with the reference name (in containerd's exports: the tag only). */
export const ANNOTATION_REF_NAME = 'org.opencontainers.image.ref.name';

/** A descriptor as it appears in manifests and indexes (OCI image-spec), platform included. */
export interface OciDescriptor {
  readonly mediaType: string;
  readonly digest: string;
  readonly size: number;
  readonly urls?: readonly string[];
  readonly annotations?: Readonly<Record<string, string>>;
  readonly platform?: Platform;
}

export function isIndexType(mediaType: string): boolean {
  return mediaType === MediaTypes.ociIndex || mediaType === MediaTypes.dockerManifestList;
}

export function isManifestType(mediaType: string): boolean {
  return mediaType === MediaTypes.ociManifest || mediaType === MediaTypes.dockerManifest;
}

export function isConfigType(mediaType: string): boolean {
  return mediaType === MediaTypes.ociConfig || mediaType === MediaTypes.dockerConfig;
}

/** containerd's images.IsLayerType: OCI layers (distributable or not) and Docker rootfs diffs. */
export function isLayerType(mediaType: string): boolean {
  return mediaType.startsWith('application/vnd.oci.image.layer.') || mediaType.startsWith('application/vnd.docker.image.rootfs.');
}

export function isNonDistributable(mediaType: string): boolean {
  return mediaType.startsWith('application/vnd.oci.image.layer.nondistributable.') || mediaType.startsWith('application/vnd.docker.image.rootfs.foreign.');
}

// ---------------------------------------------------------------------------------------------------------------
// Platforms (containerd's platforms package: Normalize, Parse, Format, Only/OnlyStrict matching)

const ARCH_ALIASES: Readonly<Record<string, string>> = { i386: '386', x86_64: 'amd64', 'x86-64': 'amd64', aarch64: 'arm64' };

/** containerd's platforms.Normalize for the cases that occur on Linux: architecture aliases and arm variants. */
export function normalizePlatform(p: Platform): Platform {
  const os = p.os.toLowerCase();
  let architecture = p.architecture.toLowerCase();
  let variant = (p.variant ?? '').toLowerCase();
  architecture = ARCH_ALIASES[architecture] ?? architecture;
  if (architecture === 'armhf') [architecture, variant] = ['arm', 'v7'];
  else if (architecture === 'armel') [architecture, variant] = ['arm', 'v6'];
  if (architecture === 'amd64' && variant === 'v1') variant = '';
  if (architecture === 'arm64' && (variant === '8' || variant === 'v8')) variant = '';
  if (architecture === 'arm') {
    if (variant === '' || variant === '7') variant = 'v7';
    else if (variant === '5' || variant === '6' || variant === '8') variant = `v${variant}`;
  }
  return {
    os,
    architecture,
    ...(variant ? { variant } : {}),
    ...(p.osVersion ? { osVersion: p.osVersion } : {}),
    ...(p.osFeatures?.length ? { osFeatures: p.osFeatures } : {}),
  };
}

const KNOWN_OS = new Set(['linux', 'windows', 'darwin', 'freebsd', 'netbsd', 'openbsd', 'solaris', 'illumos', 'aix', 'plan9', 'android', 'ios', 'js', 'dragonfly']);

/** `os[/arch[/variant]]` or a bare architecture (the host's OS then), as containerd's platforms.Parse. */
export function parsePlatform(spec: string): Platform {
  const parts = spec.split('/');
  if (parts.some((p) => !/^[A-Za-z0-9_.-]+$/.test(p)) || parts.length > 3) {
    throw new InvalidArgumentError(`invalid platform ${JSON.stringify(spec)}: expected os/arch[/variant]`);
  }
  if (parts.length === 1) {
    const only = (parts[0] as string).toLowerCase();
    if (KNOWN_OS.has(only)) return normalizePlatform({ os: only, architecture: hostPlatform().architecture });
    return normalizePlatform({ os: hostPlatform().os, architecture: only });
  }
  const [os, architecture, variant] = parts as [string, string, string?];
  return normalizePlatform({ os, architecture, ...(variant ? { variant } : {}) });
}

export function formatPlatform(p: Platform): string {
  return [p.os || 'unknown', p.architecture || 'unknown', ...(p.variant ? [p.variant] : [])].join('/');
}

/** The host's platform, normalized. */
export function defaultPlatform(): Platform {
  return normalizePlatform(hostPlatform());
}

/** Matches a platform against a list, in order of preference (containerd's platforms.Ordered of Only/OnlyStrict). */
export interface PlatformMatcher {
  match(p: Platform): boolean;
  /** True when `a` is preferred to `b` (an earlier entry of the list). */
  less(a: Platform, b: Platform): boolean;
}

function samePlatform(a: Platform, b: Platform): boolean {
  return a.os === b.os && a.architecture === b.architecture && (a.variant ?? '') === (b.variant ?? '');
}

/** What an arm host also runs (containerd's platformVector): arm64 runs arm v8 down to v5; arm vN runs lower variants. */
function compatible(p: Platform): Platform[] {
  const out = [p];
  const armVariants = ['v8', 'v7', 'v6', 'v5'];
  if (p.architecture === 'arm64') for (const v of armVariants) out.push({ os: p.os, architecture: 'arm', variant: v });
  if (p.architecture === 'arm' && p.variant) {
    const at = armVariants.indexOf(p.variant);
    if (at >= 0) for (const v of armVariants.slice(at + 1)) out.push({ os: p.os, architecture: 'arm', variant: v });
  }
  return out;
}

/** `strict`: exactly the platforms given (platforms.OnlyStrict); otherwise what each can run too (platforms.Only). */
export function platformMatcher(platforms: readonly Platform[], options: { strict?: boolean } = {}): PlatformMatcher {
  const wanted = platforms.map(normalizePlatform).flatMap((p) => (options.strict ? [p] : compatible(p)));
  const rank = (p: Platform) => {
    const n = normalizePlatform(p);
    const i = wanted.findIndex((w) => samePlatform(w, n));
    return i < 0 ? Number.MAX_SAFE_INTEGER : i;
  };
  return {
    match: (p) => rank(p) !== Number.MAX_SAFE_INTEGER,
    less: (a, b) => rank(a) < rank(b),
  };
}

export const allPlatforms: PlatformMatcher = { match: () => true, less: () => false };

// ---------------------------------------------------------------------------------------------------------------
// Manifests and indexes

/** What import and export read from a JSON document before trusting it. */
export const JSON_LIMIT = 20 * 1024 * 1024;

/** Reads a small JSON blob (a manifest, an index, a config) from the content store, refusing one over JSON_LIMIT. */
export async function readJsonBlob(content: ContentProvider, ctx: OpContext, desc: Pick<OciDescriptor, 'digest' | 'size'>, what: string): Promise<unknown> {
  if (desc.size > JSON_LIMIT) throw new InvalidArgumentError(`${what} ${desc.digest} is ${desc.size} bytes, over the limit of ${JSON_LIMIT}`);
  const parts: Buffer[] = [];
  let length = 0;
  for await (const chunk of readBlob(content, ctx, desc.digest)) {
    length += chunk.length;
    if (length > JSON_LIMIT) throw new InvalidArgumentError(`${what} ${desc.digest} is over the limit of ${JSON_LIMIT} bytes`);
    parts.push(chunk);
  }
  try {
    return JSON.parse(Buffer.concat(parts, length).toString('utf8')) as unknown;
  } catch (err) {
    throw new InvalidArgumentError(`${what} ${desc.digest} is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A descriptor from a parsed document, checked field by field. */
export function parseDescriptor(v: unknown, what: string): OciDescriptor {
  if (!isRecord(v)) throw new InvalidArgumentError(`${what}: a descriptor must be an object`);
  const { mediaType, digest, size, annotations, platform, urls } = v;
  if (typeof digest !== 'string' || !/^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/.test(digest)) {
    throw new InvalidArgumentError(`${what}: invalid digest ${JSON.stringify(digest)}`);
  }
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) throw new InvalidArgumentError(`${what}: invalid size ${JSON.stringify(size)}`);
  const out: { -readonly [K in keyof OciDescriptor]: OciDescriptor[K] } = { mediaType: typeof mediaType === 'string' ? mediaType : '', digest, size };
  if (Array.isArray(urls) && urls.every((u) => typeof u === 'string')) out.urls = urls as string[];
  if (isRecord(annotations)) {
    const a: Record<string, string> = {};
    for (const [k, val] of Object.entries(annotations)) if (typeof val === 'string') a[k] = val;
    out.annotations = a;
  }
  if (isRecord(platform) && typeof platform.os === 'string' && typeof platform.architecture === 'string') {
    out.platform = {
      os: platform.os,
      architecture: platform.architecture,
      ...(typeof platform.variant === 'string' && platform.variant ? { variant: platform.variant } : {}),
      ...(typeof platform['os.version'] === 'string' && platform['os.version'] ? { osVersion: platform['os.version'] } : {}),
      ...(Array.isArray(platform['os.features']) && platform['os.features'].length ? { osFeatures: platform['os.features'].filter((f): f is string => typeof f === 'string') } : {}),
    };
  }
  return out;
}

export interface ParsedIndex {
  readonly manifests: readonly OciDescriptor[];
}

export interface ParsedManifest {
  readonly config: OciDescriptor;
  readonly layers: readonly OciDescriptor[];
}

export async function readIndex(content: ContentProvider, ctx: OpContext, desc: OciDescriptor): Promise<ParsedIndex> {
  const doc = await readJsonBlob(content, ctx, desc, 'index');
  if (!isRecord(doc) || !Array.isArray(doc.manifests)) throw new InvalidArgumentError(`index ${desc.digest} has no manifests list`);
  return { manifests: doc.manifests.map((m, i) => parseDescriptor(m, `index ${desc.digest} manifest ${i}`)) };
}

export async function readManifest(content: ContentProvider, ctx: OpContext, desc: OciDescriptor): Promise<ParsedManifest> {
  const doc = await readJsonBlob(content, ctx, desc, 'manifest');
  if (!isRecord(doc)) throw new InvalidArgumentError(`manifest ${desc.digest} is not an object`);
  const config = parseDescriptor(doc.config, `manifest ${desc.digest} config`);
  const layers = Array.isArray(doc.layers) ? doc.layers.map((l, i) => parseDescriptor(l, `manifest ${desc.digest} layer ${i}`)) : [];
  return { config, layers };
}

/** containerd's images.Children: an index's manifests, a manifest's config and layers, nothing for anything else. */
export async function children(content: ContentProvider, ctx: OpContext, desc: OciDescriptor): Promise<OciDescriptor[]> {
  if (isIndexType(desc.mediaType)) return [...(await readIndex(content, ctx, desc)).manifests];
  if (isManifestType(desc.mediaType)) {
    const m = await readManifest(content, ctx, desc);
    return [m.config, ...m.layers];
  }
  return [];
}

/** The platform of an image's config (containerd's images.Platforms reads only os and architecture), normalized. */
export async function configPlatform(content: ContentProvider, ctx: OpContext, config: OciDescriptor): Promise<Platform> {
  const doc = await readJsonBlob(content, ctx, config, 'config');
  const cfg = isRecord(doc) ? doc : {};
  return normalizePlatform({ os: typeof cfg.os === 'string' ? cfg.os : '', architecture: typeof cfg.architecture === 'string' ? cfg.architecture : '' });
}

/** containerd's images.ChildGCLabels: the label key prefix that makes a parent blob a GC root of a child. */
export function childGcLabel(child: OciDescriptor): string {
  if (isConfigType(child.mediaType)) return 'containerd.io/gc.ref.content.config';
  if (isManifestType(child.mediaType)) return 'containerd.io/gc.ref.content.m.';
  if (isLayerType(child.mediaType)) return 'containerd.io/gc.ref.content.l.';
  return 'containerd.io/gc.ref.content.';
}

/** containerd's images.SetChildrenLabels on one parent: `…config`, `…m.<i>`, `…l.<i>`, `…content.<i>` labels. */
export async function setChildrenLabels(content: ContentManager, ctx: OpContext, parent: OciDescriptor, kids: readonly OciDescriptor[]): Promise<void> {
  if (kids.length === 0) return;
  const labels: Record<string, string> = {};
  const counts = new Map<string, number>();
  for (const child of kids) {
    const prefix = childGcLabel(child);
    const n = counts.get(prefix) ?? 0;
    counts.set(prefix, n + 1);
    const key = n > 0 || prefix.endsWith('.') ? `${prefix}${n}` : prefix;
    labels[key] = child.digest;
  }
  await content.update(ctx, { digest: parent.digest, labels }, Object.keys(labels).map((k) => `labels.${k}`));
}

// ---------------------------------------------------------------------------------------------------------------
// JSON as Go's encoding/json writes it, so that documents berth writes have the digests containerd's have.

/** Go escapes <, > and & (and U+2028/U+2029) inside strings; JSON.stringify does not. */
export function goJson(value: unknown): string {
  return JSON.stringify(value).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

function sortedRecord(r: Readonly<Record<string, string>>): Record<string, string> {
  return Object.fromEntries(Object.entries(r).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** A descriptor in ocispec.Descriptor's field order (maps sorted, empty fields omitted), ready for goJson. */
export function goDescriptor(d: OciDescriptor): Record<string, unknown> {
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
export function goIndexJson(manifests: readonly OciDescriptor[]): string {
  return goJson({ schemaVersion: 2, manifests: manifests.map(goDescriptor) });
}
