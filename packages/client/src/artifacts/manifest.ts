// Reading what a registry holds as an artifact: the resolver a call uses, a manifest or index fetched whole (size-
// bounded, digest-checked) and its JSON checked field by field, so a bad or hostile registry gets a clear error
// instead of a crash further on.
import { DataLossError, InvalidArgumentError, sha256Digest, validateDigest, type Descriptor } from '@berth/core';
import { createResolver, MAX_MANIFEST_SIZE, type HttpResolver } from '@berth/registry';
import { ArtifactMediaType, type ArtifactDescriptor, type ArtifactManifest, type ArtifactOptions } from './types.js';

/** Runs `fn` with the caller's resolver, or with one made from the options and closed afterwards. */
export async function withResolver<T>(options: ArtifactOptions, fn: (resolver: HttpResolver) => Promise<T>): Promise<T> {
  if (options.resolver) return fn(options.resolver);
  const resolver = createResolver({
    ...(options.plainHttp ? { plainHttp: true } : {}),
    ...(options.hostsDir !== undefined ? { hostsDir: options.hostsDir } : {}),
    ...(options.credentials ? { credentials: options.credentials } : {}),
    ...(options.concurrency !== undefined ? { concurrency: options.concurrency } : {}),
    ...(options.headers ? { headers: options.headers } : {}),
  });
  try {
    return await fn(resolver);
  } finally {
    resolver.close();
  }
}

/** The bytes of a manifest or index of `repo` (`host/repository`), at most MAX_MANIFEST_SIZE, digest-verified. */
export async function fetchManifestBytes(resolver: HttpResolver, repo: string, desc: Descriptor, signal?: AbortSignal): Promise<Buffer> {
  if (desc.size > MAX_MANIFEST_SIZE) throw new InvalidArgumentError(`${desc.digest}: a ${desc.size}-byte manifest is larger than ${MAX_MANIFEST_SIZE} bytes`);
  const body = await resolver.fetcher(repo).fetch(desc, signal ? { signal } : {});
  const parts: Buffer[] = [];
  let length = 0;
  for await (const chunk of body.chunks) {
    length += chunk.length;
    if (length > MAX_MANIFEST_SIZE) throw new DataLossError(`${desc.digest}: the registry sent more than ${MAX_MANIFEST_SIZE} bytes for a manifest`);
    parts.push(Buffer.from(chunk));
  }
  const bytes = Buffer.concat(parts, length);
  const actual = sha256Digest(bytes);
  if (actual !== desc.digest) throw new DataLossError(`${repo}@${desc.digest}: the registry sent content with digest ${actual}`);
  return bytes;
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function stringMap(value: unknown, what: string): Record<string, string> | undefined {
  if (value === undefined || value === null) return undefined;
  if (!isRecord(value) || Object.values(value).some((v) => typeof v !== 'string')) throw new DataLossError(`${what}: annotations must map strings to strings`);
  return value as Record<string, string>;
}

/** A descriptor of a manifest, checked: media type, digest, size, and the optional artifact fields. */
export function parseDescriptor(value: unknown, what: string): ArtifactDescriptor {
  if (!isRecord(value)) throw new DataLossError(`${what}: not a descriptor object`);
  const { mediaType, digest, size, artifactType, data } = value;
  if (typeof mediaType !== 'string' || mediaType === '') throw new DataLossError(`${what}: no mediaType`);
  if (typeof digest !== 'string') throw new DataLossError(`${what}: no digest`);
  try {
    validateDigest(digest);
  } catch (err) {
    throw new DataLossError(`${what}: bad digest`, { cause: err });
  }
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) throw new DataLossError(`${what}: bad size ${JSON.stringify(size)}`);
  if (artifactType !== undefined && typeof artifactType !== 'string') throw new DataLossError(`${what}: artifactType is not a string`);
  if (data !== undefined && typeof data !== 'string') throw new DataLossError(`${what}: data is not a base64 string`);
  const annotations = stringMap(value.annotations, what);
  return {
    mediaType,
    digest,
    size,
    ...(annotations ? { annotations } : {}),
    ...(data !== undefined ? { data } : {}),
    ...(artifactType ? { artifactType } : {}),
  };
}

/** Parses an OCI image manifest (an artifact's) and checks its shape. */
export function parseArtifactManifest(bytes: Buffer, digest: string): ArtifactManifest {
  let json: unknown;
  try {
    json = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new DataLossError(`manifest ${digest} is not JSON`, { cause: err });
  }
  if (!isRecord(json)) throw new DataLossError(`manifest ${digest} is not a JSON object`);
  if (json.schemaVersion !== 2) throw new DataLossError(`manifest ${digest}: schemaVersion ${JSON.stringify(json.schemaVersion)}, expected 2`);
  if (json.mediaType !== undefined && json.mediaType !== ArtifactMediaType.Manifest) {
    throw new InvalidArgumentError(`manifest ${digest} is a ${String(json.mediaType)}, not an OCI image manifest`);
  }
  if (!Array.isArray(json.layers)) throw new DataLossError(`manifest ${digest}: no layers array`);
  if (json.artifactType !== undefined && typeof json.artifactType !== 'string') throw new DataLossError(`manifest ${digest}: artifactType is not a string`);
  const annotations = stringMap(json.annotations, `manifest ${digest}`);
  return {
    schemaVersion: 2,
    mediaType: ArtifactMediaType.Manifest,
    ...(json.artifactType ? { artifactType: json.artifactType as string } : {}),
    config: parseDescriptor(json.config, `manifest ${digest}: config`),
    layers: json.layers.map((l, i) => parseDescriptor(l, `manifest ${digest}: layer ${i}`)),
    ...(json.subject !== undefined ? { subject: parseDescriptor(json.subject, `manifest ${digest}: subject`) } : {}),
    ...(annotations ? { annotations } : {}),
  };
}

/** Parses an image index (the referrers answer or the fallback tag's) into its manifests. */
export function parseIndexManifests(bytes: Buffer, digest: string): ArtifactDescriptor[] {
  let json: unknown;
  try {
    json = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new DataLossError(`index ${digest} is not JSON`, { cause: err });
  }
  if (!isRecord(json) || !Array.isArray(json.manifests)) throw new DataLossError(`index ${digest}: no manifests array`);
  return json.manifests.map((m, i) => parseDescriptor(m, `index ${digest}: manifest ${i}`));
}

/**
 * An artifact's descriptor as a referrers index lists it: the manifest's media type, digest and size, its
 * `artifactType` (the config's media type when the manifest has none, as the distribution spec says) and its
 * annotations.
 */
export function referrerDescriptor(desc: Descriptor, manifest: ArtifactManifest): ArtifactDescriptor {
  return {
    mediaType: desc.mediaType,
    digest: desc.digest,
    size: desc.size,
    ...(manifest.annotations && Object.keys(manifest.annotations).length > 0 ? { annotations: manifest.annotations } : {}),
    artifactType: manifest.artifactType ?? manifest.config.mediaType,
  };
}

/** `host/repository` of a reference (the repository every blob and referrer of an artifact lives in). */
export function repositoryOf(ref: { host: string; repository: string }): string {
  return `${ref.host}/${ref.repository}`;
}
