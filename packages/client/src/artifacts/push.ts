// pushArtifact: the OCI 1.1 image manifest `oras push` writes (oras-go's PackManifest, version 1.1), its blobs
// first (the registry checks that a manifest's blobs exist), and for an attachment (`subject`) the referrers index
// of the tag schema fallback when the registry has no referrers API.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { InvalidArgumentError, sha256Digest, validateDigest, type Descriptor } from '@berth/core';
import { parseRemoteRef, type HttpResolver } from '@berth/registry';
import { referrerDescriptor, repositoryOf, withResolver } from './manifest.js';
import { addToReferrersIndex } from './referrers.js';
import { checkTitle } from './titles.js';
import {
  ANNOTATION_CREATED,
  ANNOTATION_TITLE,
  ArtifactMediaType,
  EMPTY_CONTENT,
  EMPTY_DESCRIPTOR,
  type ArtifactDescriptor,
  type ArtifactManifest,
  type ArtifactOptions,
  type PushArtifactSpec,
} from './types.js';

/** RFC 6838 `type/subtype` (the check oras-go's validateMediaType makes). */
const MEDIA_TYPE = /^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}\/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$/;
/** RFC 3339 date-time, as `org.opencontainers.image.created` must be. */
const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})$/;

export function checkMediaType(mediaType: string, what: string): string {
  if (!MEDIA_TYPE.test(mediaType)) throw new InvalidArgumentError(`${what}: ${JSON.stringify(mediaType)} is not a media type (type/subtype, RFC 6838)`);
  return mediaType;
}

/** Now in RFC 3339 to the second, as Go's time.RFC3339 formats a UTC time (`2026-12-01T22:50:00Z`). */
export function createdNow(now = new Date()): string {
  return now.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

interface Blob {
  readonly desc: ArtifactDescriptor;
  readonly content: () => AsyncIterable<Uint8Array>;
}

const bytesOf = (data: Uint8Array | string) => (typeof data === 'string' ? Buffer.from(data) : Buffer.from(data.buffer, data.byteOffset, data.byteLength));

function inMemory(data: Buffer) {
  return async function* () {
    yield data;
  };
}

/** A file's size and digest, read once (streamed); refused unless it is a regular file. */
async function fileBlob(path: string, mediaType: string, annotations: Record<string, string>): Promise<Blob> {
  let info;
  try {
    info = await stat(path);
  } catch (err) {
    throw new InvalidArgumentError(`cannot read ${path}: ${(err as Error).message}`, { cause: err });
  }
  if (!info.isFile()) throw new InvalidArgumentError(`${path} is not a regular file (pack a directory into a tar first)`);
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of createReadStream(path) as AsyncIterable<Buffer>) {
    hash.update(chunk);
    size += chunk.length;
  }
  return {
    desc: { mediaType, digest: `sha256:${hash.digest('hex')}`, size, annotations },
    // read again for the upload (and again if an upload is retried); a file changed since is refused by the
    // registry's digest check
    content: () => createReadStream(path) as AsyncIterable<Buffer>,
  };
}

function checkAnnotations(annotations: Readonly<Record<string, string>> | undefined, what: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(annotations ?? {})) {
    if (k === '') throw new InvalidArgumentError(`${what}: an annotation key must not be empty`);
    if (typeof v !== 'string') throw new InvalidArgumentError(`${what}: annotation ${k} must be a string`);
    out[k] = v;
  }
  return out;
}

/** The blobs and the manifest of an artifact, checked, before anything is sent. */
export async function packArtifact(spec: PushArtifactSpec, now = new Date()): Promise<{ blobs: Blob[]; manifest: ArtifactManifest; bytes: Buffer }> {
  const { artifactType } = spec;
  if (artifactType !== undefined) checkMediaType(artifactType, 'artifact type');
  if (!spec.config && !artifactType) {
    throw new InvalidArgumentError('an artifact without a config needs an artifact type (--artifact-type), as OCI image-spec 1.1 and oras require');
  }
  const blobs: Blob[] = [];
  let config: ArtifactDescriptor = EMPTY_DESCRIPTOR;
  if (spec.config) {
    const data = bytesOf(spec.config.data);
    const annotations = checkAnnotations(spec.config.annotations, 'config');
    config = {
      mediaType: checkMediaType(spec.config.mediaType, 'config'),
      digest: sha256Digest(data),
      size: data.length,
      ...(Object.keys(annotations).length > 0 ? { annotations } : {}),
    };
    blobs.push({ desc: config, content: inMemory(data) });
  } else {
    blobs.push({ desc: EMPTY_DESCRIPTOR, content: inMemory(EMPTY_CONTENT) });
  }
  const titles = new Set<string>();
  const layers: ArtifactDescriptor[] = [];
  for (const file of spec.files) {
    const title = checkTitle(file.title);
    if (titles.has(title)) throw new InvalidArgumentError(`two files are titled ${JSON.stringify(title)}`);
    titles.add(title);
    const mediaType = checkMediaType(file.mediaType ?? ArtifactMediaType.DefaultLayer, `file ${title}`);
    const annotations = { ...checkAnnotations(file.annotations, `file ${title}`), [ANNOTATION_TITLE]: title };
    let blob: Blob;
    if (file.path !== undefined) {
      blob = await fileBlob(file.path, mediaType, annotations);
    } else {
      const data = bytesOf(file.data);
      blob = { desc: { mediaType, digest: sha256Digest(data), size: data.length, annotations }, content: inMemory(data) };
    }
    layers.push(blob.desc);
    blobs.push(blob);
  }
  // no files: the empty descriptor as the one layer (oras-go does the same; image-spec asks for at least one)
  if (layers.length === 0) layers.push(EMPTY_DESCRIPTOR);
  const annotations = checkAnnotations(spec.annotations, 'manifest');
  const created = annotations[ANNOTATION_CREATED];
  if (created !== undefined && !RFC3339.test(created)) throw new InvalidArgumentError(`${ANNOTATION_CREATED} must be an RFC 3339 time, not ${JSON.stringify(created)}`);
  annotations[ANNOTATION_CREATED] ??= createdNow(now);
  let subject: ArtifactDescriptor | undefined;
  if (spec.subject) {
    validateDigest(spec.subject.digest, 'subject digest');
    checkMediaType(spec.subject.mediaType, 'subject');
    if (!Number.isSafeInteger(spec.subject.size) || spec.subject.size < 0) throw new InvalidArgumentError(`subject: bad size ${spec.subject.size}`);
    subject = { mediaType: spec.subject.mediaType, digest: spec.subject.digest, size: spec.subject.size };
  }
  // Go's field order for ocispec.Manifest, so the bytes match what oras would write for the same input
  const manifest: ArtifactManifest = {
    schemaVersion: 2,
    mediaType: ArtifactMediaType.Manifest,
    ...(artifactType ? { artifactType } : {}),
    config,
    layers,
    ...(subject ? { subject } : {}),
    annotations,
  };
  return { blobs, manifest, bytes: Buffer.from(JSON.stringify(manifest)) };
}

async function pushBlobs(resolver: HttpResolver, repo: string, blobs: readonly Blob[], signal?: AbortSignal): Promise<void> {
  const pusher = resolver.pusher(repo);
  const seen = new Set<string>();
  for (const blob of blobs) {
    if (seen.has(blob.desc.digest)) continue;
    seen.add(blob.desc.digest);
    const { mediaType, digest, size } = blob.desc;
    await pusher.push({ mediaType, digest, size }, blob.content, signal ? { signal } : {});
  }
}

/**
 * Pushes an artifact to `ref` (`host/repo[:tag][@digest]`): config and files, then the manifest under the tag
 * (`latest` when none is given, except for an attachment, which is pushed by digest alone as `oras attach` does).
 * With `subject`, the registry's referrers API makes it a referrer; without one (a 404 on the referrers URL) the
 * `sha256-<hex>` index of the subject is updated. Returns the manifest's descriptor.
 */
export async function pushArtifact(ref: string, spec: PushArtifactSpec, options: ArtifactOptions = {}): Promise<ArtifactDescriptor> {
  const remote = parseRemoteRef(ref);
  const { blobs, manifest, bytes } = await packArtifact(spec);
  const desc: Descriptor = { mediaType: ArtifactMediaType.Manifest, digest: sha256Digest(bytes), size: bytes.length };
  if (remote.digest !== undefined && remote.digest !== desc.digest) {
    throw new InvalidArgumentError(`${ref}: the manifest's digest is ${desc.digest}, not the one in the reference`);
  }
  const repo = repositoryOf(remote);
  const signal = options.signal;
  return withResolver(options, async (resolver) => {
    await pushBlobs(resolver, repo, blobs, signal);
    const reference = remote.tag ?? (remote.digest !== undefined || manifest.subject ? desc.digest : 'latest');
    await resolver.pusher(repo).push(desc, inMemory(bytes), { reference, ...(signal ? { signal } : {}) });
    const result = referrerDescriptor(desc, manifest);
    if (manifest.subject) {
      const api = await resolver.referrers(repo, manifest.subject.digest, signal ? { signal } : {});
      if (api === undefined) await addToReferrersIndex(resolver, repo, manifest.subject, result, signal);
    }
    return result;
  });
}
