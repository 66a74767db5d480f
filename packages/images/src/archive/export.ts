// Export of images to an OCI image layout tarball that also carries Docker's manifest.json (so `docker load` reads
// it), as containerd 1.6's images/archive exporter writes one: every entry sorted by name, blobs verified while they
// are copied, everything resolved before the first byte is produced.
import { createHash } from 'node:crypto';
import { DataLossError, InvalidArgumentError, NotFoundError, type ContentProvider, type OpContext } from '@berth/core';
import type { ImageServices, Platform } from '../types.js';
import type { ImageDescriptor } from '../manifests.js';
import { isIndexType, isManifestType, isNonDistributable } from '../media-types.js';
import { defaultPlatform, normalizePlatform, orderedMatcher, type PlatformMatcher } from '../platforms.js';
import { ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME, children, goIndexJson, goJson, readIndex, readManifest } from './documents.js';
import { familiarizeReference, ociReferenceName } from './reference.js';
import { tarHeader, tarPadding, tarTrailer } from './tar.js';

export interface ExportOptions {
  /**
   * The platforms whose manifests of an index are exported, in order of preference (the first match becomes the
   * manifest.json entry): the host's only by default, as ctr (platforms.DefaultStrict).
   */
  readonly platforms?: readonly Platform[];
  /** Every manifest of an index (ctr's --all-platforms): then all of their content must be present. */
  readonly allPlatforms?: boolean;
  /** Leave out Docker's manifest.json (ctr's --skip-manifest-json). */
  readonly skipManifestJson?: boolean;
  /** Leave out non-distributable (foreign) layers (ctr's --skip-non-distributable). */
  readonly skipNonDistributable?: boolean;
}

interface Rec {
  readonly name: string;
  readonly mode: number;
  readonly type: 'file' | 'directory';
  readonly size: number;
  readonly bytes?: Buffer;
  readonly blob?: ImageDescriptor;
}

const LAYOUT_JSON = Buffer.from(goJson({ imageLayoutVersion: '1.0.0' }));

function blobPath(digest: string): string {
  const colon = digest.indexOf(':');
  return `blobs/${digest.slice(0, colon)}/${digest.slice(colon + 1)}`;
}

function withName(annotations: Readonly<Record<string, string>> | undefined, name: string): Record<string, string> {
  return { ...annotations, [ANNOTATION_IMAGE_NAME]: name, [ANNOTATION_REF_NAME]: ociReferenceName(name) };
}

/** The tar records of the archive for `names` (in order), and what manifest.json will say. */
async function plan(services: Pick<ImageServices, 'content' | 'images'>, ctx: OpContext, names: readonly string[], options: ExportOptions): Promise<Rec[]> {
  const { content } = services;
  // ctr export: platforms.Ordered of the ones given, or platforms.DefaultStrict (the host's exactly).
  const matcher: PlatformMatcher = orderedMatcher((options.platforms?.length ? options.platforms : [defaultPlatform()]).map(normalizePlatform));
  const keep = (d: ImageDescriptor) => !(options.skipNonDistributable && isNonDistributable(d.mediaType));
  const blobs = new Map<string, ImageDescriptor>();
  const algorithms = new Set<string>();
  const addBlob = (d: ImageDescriptor) => {
    if (!keep(d)) return;
    blobs.set(d.digest, d);
    algorithms.add(d.digest.slice(0, d.digest.indexOf(':')));
  };
  const addTree = async (d: ImageDescriptor): Promise<void> => {
    addBlob(d);
    for (const kid of await children(content, ctx, d)) await addTree(kid);
  };

  const targets: ImageDescriptor[] = [];
  for (const name of names) {
    const img = await services.images.get(ctx, name);
    targets.push({ ...img.target, annotations: withName(img.target.annotations, name) });
  }

  const dockerManifests = new Map<string, { manifest: ImageDescriptor; names: string[] }>();
  const resolvedIndex = new Map<string, string>();
  for (const desc of targets) {
    const name = desc.annotations?.[ANNOTATION_IMAGE_NAME] ?? '';
    if (isManifestType(desc.mediaType)) {
      let entry = dockerManifests.get(desc.digest);
      if (!entry) {
        await addTree(desc);
        entry = { manifest: desc, names: [] };
        dockerManifests.set(desc.digest, entry);
      }
      if (name && !options.skipManifestJson) entry.names.push(name);
    } else if (isIndexType(desc.mediaType)) {
      let chosen = resolvedIndex.get(desc.digest);
      if (chosen === undefined) {
        addBlob(desc);
        const candidates: ImageDescriptor[] = [];
        for (const m of (await readIndex(content, ctx, desc)).manifests) {
          if (!m.platform || matcher.match(m.platform)) candidates.push(m);
          else if (!options.allPlatforms) continue;
          await addTree(m);
        }
        chosen = '';
        if (!options.skipManifestJson) {
          if (candidates.length === 0) throw new NotFoundError(`no manifest of ${name || desc.digest} found for platform`);
          const sorted = [...candidates].sort((a, b) => (!a.platform ? (b.platform ? 1 : 0) : !b.platform ? -1 : matcher.compare(a.platform, b.platform)));
          const first = sorted[0] as ImageDescriptor;
          chosen = first.digest;
          dockerManifests.set(chosen, { manifest: first, names: [] });
        }
        resolvedIndex.set(desc.digest, chosen);
      }
      if (chosen && name) dockerManifests.get(chosen)?.names.push(name);
    } else {
      throw new InvalidArgumentError(`only manifests may be exported: ${name} is a ${desc.mediaType || 'blob without media type'}`);
    }
  }

  const records: Rec[] = [
    { name: 'oci-layout', mode: 0o444, type: 'file', size: LAYOUT_JSON.length, bytes: LAYOUT_JSON },
    (() => {
      const bytes = Buffer.from(goIndexJson(targets));
      return { name: 'index.json', mode: 0o644, type: 'file' as const, size: bytes.length, bytes };
    })(),
  ];
  for (const d of blobs.values()) records.push({ name: blobPath(d.digest), mode: 0o444, type: 'file', size: d.size, blob: d });
  if (dockerManifests.size > 0) {
    const entries = [];
    for (const { manifest, names: tags } of dockerManifests.values()) {
      const m = await readManifest(content, ctx, manifest);
      entries.push({ Config: blobPath(m.config.digest), RepoTags: tags.length ? tags.map(familiarizeReference) : null, Layers: m.layers.map((l) => blobPath(l.digest)) });
    }
    const bytes = Buffer.from(goJson(entries));
    records.push({ name: 'manifest.json', mode: 0o644, type: 'file', size: bytes.length, bytes });
  }
  if (algorithms.size > 0) {
    records.push({ name: 'blobs/', mode: 0o755, type: 'directory', size: 0 });
    for (const alg of algorithms) records.push({ name: `blobs/${alg}/`, mode: 0o755, type: 'directory', size: 0 });
  }
  records.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return records;
}

async function* copyBlob(content: ContentProvider, ctx: OpContext, desc: ImageDescriptor): AsyncGenerator<Buffer> {
  const reader = await content.reader(ctx, desc.digest).catch((err: unknown) => {
    throw new NotFoundError(`content ${desc.digest} of the image is not in the content store: ${(err as Error).message}`, { cause: err });
  });
  const hash = createHash(desc.digest.slice(0, desc.digest.indexOf(':')));
  let copied = 0;
  try {
    for await (const chunk of reader.stream(0, desc.size)) {
      hash.update(chunk);
      copied += chunk.length;
      yield chunk;
    }
  } finally {
    await reader.close();
  }
  const got = `${desc.digest.slice(0, desc.digest.indexOf(':'))}:${hash.digest('hex')}`;
  if (copied !== desc.size) throw new DataLossError(`unexpected copy size for ${desc.digest}: ${copied} of ${desc.size} bytes`);
  if (got !== desc.digest) throw new DataLossError(`unexpected digest ${got} copied for ${desc.digest}`);
}

/**
 * Exports images (by name) as a tar stream. Everything the archive needs (images, indexes, manifests) is resolved
 * before the first chunk: an unknown image or missing manifest fails before any byte is written. A blob that is
 * missing or does not verify fails the stream where it occurs.
 */
export async function exportArchive(
  services: Pick<ImageServices, 'content' | 'images'>,
  ctx: OpContext,
  names: readonly string[],
  options: ExportOptions = {},
): Promise<AsyncIterable<Buffer>> {
  if (names.length === 0) throw new InvalidArgumentError('no image to export');
  const records = await plan(services, ctx, names, options);
  async function* produce(): AsyncGenerator<Buffer> {
    let last = '';
    for (const r of records) {
      if (r.name === last) continue;
      last = r.name;
      yield tarHeader(r.name, r.size, r.mode, r.type);
      if (r.bytes) yield r.bytes;
      else if (r.blob) yield* copyBlob(services.content, ctx, r.blob);
      yield tarPadding(r.size);
    }
    yield tarTrailer();
  }
  return produce();
}
