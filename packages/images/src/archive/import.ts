// Import of image archives, as containerd 1.6 does it (images/archive/importer.go for the blobs and the index,
// client's Import for the image names): OCI image layouts (oci-layout, index.json, blobs/<alg>/<hex>) and Docker
// archives (`docker save`: manifest.json with Config/RepoTags/Layers, layer directories), read as one stream.
import { posix } from 'node:path';
import type { Readable } from 'node:stream';
import {
  InvalidArgumentError,
  isNotFound,
  NotFoundError,
  sha256Digest,
  validateDigest,
  writeBlob,
  type ContentStore,
  type Image,
  type LeaseManager,
  type OpContext,
} from '@berth/core';
import type { ImageServices, Platform } from '../types.js';
import type { ImageDescriptor } from '../manifests.js';
import { MediaType } from '../media-types.js';
import { allPlatforms, defaultMatcher, onlyPlatform, orderedMatcher, normalizePlatform, type PlatformMatcher } from '../platforms.js';
import { ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME, children, configPlatform, goDescriptor, goIndexJson, goJson, readIndex, setChildrenLabels } from './documents.js';
import { normalizeReference, ociReferenceName, refTranslator } from './reference.js';
import { withLease } from './lease.js';
import { readTar, type TarEntry } from './tar.js';

export interface ImportOptions {
  /**
   * Platforms whose manifests the images' GC labels cover (what unpack would use): the host's and what it runs by
   * default (platforms.Default), `all` for every one (ctr's --all-platforms), or exactly the ones given (ctr's
   * --platform, platforms.OnlyStrict; `strictPlatforms: false` adds what each of them runs).
   */
  readonly platforms?: readonly Platform[] | 'all';
  readonly strictPlatforms?: boolean;
  /** Also keep the archive's index as an image of this name (ctr's --index-name). */
  readonly indexName?: string;
  /**
   * ctr's --base-name: bare OCI ref names (tags) become `<baseName>:<tag>` and full names not under it are skipped.
   * Without it, bare tags get `import-<yyyy-MM-dd>` and every full name is kept.
   */
  readonly baseName?: string;
  /** Also name each manifest `<base>@<digest>` (ctr's --digests); `skipDigestForNamed` only for unnamed ones. */
  readonly digests?: boolean;
  readonly skipDigestForNamed?: boolean;
  /** Image labels to set on the images created or updated. */
  readonly labels?: Readonly<Record<string, string>>;
}

export interface ImportResult {
  /** The index the archive described (for a Docker archive: the one written for it). */
  readonly index: ImageDescriptor;
  /** The images created or updated, in the archive's order. */
  readonly images: readonly Image[];
}

interface DockerManifestEntry {
  readonly Config: string;
  readonly RepoTags: readonly string[];
  readonly Layers: readonly string[];
}

const BLOB_PATH = /^blobs\/([a-z0-9]+(?:[+._-][a-z0-9]+)*)\/([a-zA-Z0-9=_-]+)$/;

/** The digest an OCI layout path names (`blobs/sha256/<hex>` -> `sha256:<hex>`), when it names one. */
function digestOfPath(name: string): string | undefined {
  const m = BLOB_PATH.exec(name);
  if (!m) return undefined;
  const digest = `${m[1]}:${m[2]}`;
  try {
    return validateDigest(digest);
  } catch {
    return undefined;
  }
}

/** containerd reads oci-layout and manifest.json through a 20 MiB limit. */
const JSON_LIMIT = 20 * 1024 * 1024;

async function readJsonEntry(entry: TarEntry): Promise<unknown> {
  if (entry.size > JSON_LIMIT) throw new InvalidArgumentError(`${entry.name} in the archive is ${entry.size} bytes, over the limit of ${JSON_LIMIT}`);
  const parts: Buffer[] = [];
  for await (const chunk of entry.body) parts.push(chunk as Buffer);
  try {
    return JSON.parse(Buffer.concat(parts).toString('utf8')) as unknown;
  } catch (err) {
    throw new InvalidArgumentError(`${entry.name} in the archive is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
}

function parseDockerManifests(doc: unknown): DockerManifestEntry[] {
  if (!Array.isArray(doc)) throw new InvalidArgumentError('manifest.json in the archive is not a list');
  return doc.map((m: unknown, i) => {
    const r = (typeof m === 'object' && m !== null ? m : {}) as Record<string, unknown>;
    const strings = (v: unknown) => (Array.isArray(v) ? v.filter((s): s is string => typeof s === 'string') : []);
    if (typeof r.Config !== 'string') throw new InvalidArgumentError(`manifest.json entry ${i} has no Config`);
    return { Config: r.Config, RepoTags: strings(r.RepoTags), Layers: strings(r.Layers) };
  });
}

/** Writes one tar entry into the content store, verifying its digest when its path names one. */
async function ingestEntry(content: ContentStore, ctx: OpContext, entry: TarEntry, name: string): Promise<ImageDescriptor> {
  const expected = digestOfPath(name) ?? '';
  try {
    const result = await writeBlob(content, ctx, entry.body as AsyncIterable<Uint8Array>, {
      ref: `tar-${name}`,
      total: entry.size,
      expected,
      discardOnCommitFailure: true,
    });
    if (result.existed) await entry.drain();
    return { mediaType: '', digest: result.digest || expected, size: entry.size };
  } catch (err) {
    throw new InvalidArgumentError(`failed to ingest ${JSON.stringify(entry.name)} from the archive: ${(err as Error).message}`, { cause: err });
  }
}

/** Writes a document Go-marshalled, under containerd's `manifest-<digest>` ref. */
async function writeDocument(content: ContentStore, ctx: OpContext, json: string, mediaType: string): Promise<ImageDescriptor> {
  const bytes = Buffer.from(json);
  const digest = sha256Digest(bytes);
  await writeBlob(content, ctx, (async function* () {
    yield bytes;
  })(), { ref: `manifest-${digest}`, total: bytes.length, expected: digest, discardOnCommitFailure: true });
  return { mediaType, digest, size: bytes.length };
}

/** containerd's detectLayerMediaType from the first bytes of a layer: uncompressed tar, or compressed. */
async function layerMediaType(content: ContentStore, ctx: OpContext, desc: ImageDescriptor): Promise<string> {
  if (desc.size === 0) return MediaType.DockerLayer;
  const reader = await content.reader(ctx, desc.digest);
  let head: Buffer;
  try {
    head = await reader.read(0, Math.min(10, desc.size));
  } finally {
    await reader.close();
  }
  if (head[0] === 0x1f && head[1] === 0x8b) return MediaType.DockerLayerGzip;
  if (head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd) return MediaType.OciLayerZstd;
  if (head[0] === 0x42 && head[1] === 0x5a && head[2] === 0x68) return MediaType.DockerLayerGzip;
  if (head[0] === 0xfd && head.subarray(1, 6).toString('latin1') === '7zXZ\0') return MediaType.DockerLayerGzip;
  return MediaType.DockerLayer;
}

/** Layers of a Docker archive entry: a compressed copy made earlier (label containerd.io/uncompressed) wins. */
async function resolveLayers(content: ContentStore, ctx: OpContext, files: readonly string[], blobs: Map<string, ImageDescriptor>): Promise<ImageDescriptor[]> {
  const layers: ImageDescriptor[] = [];
  for (const file of files) {
    const desc = blobs.get(posix.normalize(file));
    if (!desc) throw new InvalidArgumentError(`failed to resolve layers: layer ${JSON.stringify(file)} not found in the archive`);
    let compressed: ImageDescriptor | undefined;
    for await (const info of content.list(ctx, [`labels."containerd.io/uncompressed"==${desc.digest}`])) {
      compressed = { mediaType: '', digest: info.digest, size: info.size };
      break;
    }
    const chosen = compressed ?? desc;
    layers.push({ mediaType: await layerMediaType(content, ctx, chosen), digest: chosen.digest, size: chosen.size });
  }
  return layers;
}

/**
 * Reads the archive into the content store and returns the descriptor of its index (containerd's ImportIndex):
 * index.json for an OCI layout, a new index of Docker v2 manifests (one per tag) for a Docker archive.
 */
export async function importIndex(content: ContentStore, ctx: OpContext, source: AsyncIterable<Uint8Array> | Readable): Promise<ImageDescriptor> {
  let layoutVersion: string | undefined;
  let dockerManifests: DockerManifestEntry[] | undefined;
  const symlinks = new Map<string, string>();
  const blobs = new Map<string, ImageDescriptor>();

  for await (const entry of readTar(source)) {
    const name = posix.normalize(entry.name).replace(/^(\.\/)+/, '').replace(/\/$/, '');
    if (entry.type === 'symlink') symlinks.set(name, posix.join(posix.dirname(name), entry.linkname));
    if (entry.type !== 'file') continue;
    if (name === 'oci-layout') {
      const doc = (await readJsonEntry(entry)) as { imageLayoutVersion?: unknown } | null;
      layoutVersion = typeof doc?.imageLayoutVersion === 'string' ? doc.imageLayoutVersion : '';
    } else if (name === 'manifest.json') {
      dockerManifests = parseDockerManifests(await readJsonEntry(entry));
    } else {
      blobs.set(name, await ingestEntry(content, ctx, entry, name));
    }
  }

  if (layoutVersion !== undefined && layoutVersion !== '') {
    if (layoutVersion !== '1.0.0') throw new InvalidArgumentError(`unsupported OCI version ${layoutVersion}`);
    const idx = blobs.get('index.json');
    if (!idx) throw new InvalidArgumentError('missing index.json in OCI layout 1.0.0');
    return { ...idx, mediaType: MediaType.OciIndex };
  }
  if (!dockerManifests) throw new InvalidArgumentError('unrecognized image format: the archive has neither oci-layout nor manifest.json');

  for (const [name, target] of symlinks) {
    const desc = blobs.get(target);
    if (!desc) throw new InvalidArgumentError(`no target for symlink layer from ${JSON.stringify(name)} to ${JSON.stringify(target)}`);
    blobs.set(name, desc);
  }

  const manifests: ImageDescriptor[] = [];
  for (const m of dockerManifests) {
    const cfg = blobs.get(posix.normalize(m.Config));
    if (!cfg) throw new InvalidArgumentError(`image config ${JSON.stringify(m.Config)} not found in the archive`);
    const config: ImageDescriptor = { ...cfg, mediaType: MediaType.DockerConfig };
    const layers = await resolveLayers(content, ctx, m.Layers, blobs);
    const manifestJson = goJson({ schemaVersion: 2, mediaType: MediaType.DockerManifest, config: goDescriptor(config), layers: layers.map(goDescriptor) });
    const desc: ImageDescriptor = { ...(await writeDocument(content, ctx, manifestJson, MediaType.DockerManifest)), platform: await configPlatform(content, ctx, config) };
    if (m.RepoTags.length === 0) manifests.push(desc);
    for (const tag of m.RepoTags) {
      const normalized = normalizeReference(tag);
      manifests.push({ ...desc, annotations: { [ANNOTATION_IMAGE_NAME]: normalized, [ANNOTATION_REF_NAME]: ociReferenceName(normalized) } });
    }
  }
  return writeDocument(content, ctx, goIndexJson(manifests), MediaType.OciIndex);
}

function today(): string {
  const d = new Date();
  const two = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())}`;
}

/** How import names what an index lists (containerd's imageName with ctr's translators). */
function imageName(annotations: Readonly<Record<string, string>> | undefined, translate: (ref: string) => string): string {
  const full = annotations?.[ANNOTATION_IMAGE_NAME];
  if (full) return full;
  const ref = annotations?.[ANNOTATION_REF_NAME];
  return ref ? translate(ref) : '';
}

/** ctr import's matcher: every platform, exactly the ones given (platforms.OnlyStrict), or the host's (platforms.Default). */
function matcherOf(options: ImportOptions): PlatformMatcher {
  if (options.platforms === 'all') return allPlatforms;
  if (!options.platforms?.length) return defaultMatcher();
  if (options.strictPlatforms ?? true) return orderedMatcher(options.platforms.map(normalizePlatform));
  const matchers = options.platforms.map(onlyPlatform);
  return { match: (p) => matchers.some((m) => m.match(p)), compare: () => 0 };
}

/**
 * Imports an archive (containerd's client.Import): its blobs under a lease, the GC labels of the index and of the
 * manifests of the chosen platforms, and one image per named manifest (created, or its target updated). Unpacking
 * is the caller's (ctr unpacks each image afterwards).
 */
export async function importArchive(
  services: Pick<ImageServices, 'content' | 'images'> & { readonly leases: Pick<LeaseManager, 'create' | 'delete'> },
  ctx: OpContext,
  source: AsyncIterable<Uint8Array> | Readable,
  options: ImportOptions = {},
): Promise<ImportResult> {
  return withLease(services, ctx, async (lctx) => {
    const { content } = services;
    const index = await importIndex(content, lctx, source);
    const base = options.baseName || `import-${today()}`;
    const translate = refTranslator(base, Boolean(options.baseName));
    const matcher = matcherOf(options);
    const wanted: { name: string; target: ImageDescriptor }[] = [];
    if (options.indexName) wanted.push({ name: options.indexName, target: index });

    let walked = false;
    const walk = async (desc: ImageDescriptor, top: boolean): Promise<void> => {
      let kids: ImageDescriptor[];
      if (top) {
        kids = [...(await readIndex(content, lctx, desc)).manifests];
        for (const m of kids) {
          const name = imageName(m.annotations, translate);
          if (name) wanted.push({ name, target: m });
          if (options.digests && !(options.skipDigestForNamed && name)) wanted.push({ name: `${base}@${m.digest}`, target: m });
        }
      } else {
        kids = await children(content, lctx, desc);
      }
      kids = kids.filter((k) => !k.platform || matcher.match(k.platform));
      if (kids.length === 0) return;
      walked = true;
      await setChildrenLabels(content, lctx, desc, kids);
      for (const kid of kids) await walk(kid, false);
    };
    await walk(index, true);
    if (!walked) throw new NotFoundError('no manifest of the archive matches the platforms asked for');

    const images: Image[] = [];
    for (const w of wanted) {
      const target = { mediaType: w.target.mediaType, digest: w.target.digest, size: w.target.size, ...(w.target.annotations ? { annotations: w.target.annotations } : {}) };
      const input = { name: w.name, target, ...(options.labels ? { labels: { ...options.labels } } : {}) };
      try {
        images.push(await services.images.update(lctx, input, ['target', ...(options.labels ? Object.keys(options.labels).map((k) => `labels.${k}`) : [])]));
      } catch (err) {
        if (!isNotFound(err)) throw err;
        images.push(await services.images.create(lctx, input));
      }
    }
    return { index, images };
  });
}
