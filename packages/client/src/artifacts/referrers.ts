// The referrers of a subject (OCI distribution spec 1.1): the referrers API when the registry has one, else the
// tag schema fallback, an image index tagged `<alg>-<hex>` of the subject's digest that whoever pushes a referrer
// keeps up to date (read, add, push under the tag, delete the index it replaced), as oras-go does.
import { isNotFound, sha256Digest, type Descriptor } from '@berth/core';
import { parseRemoteRef, type HttpResolver } from '@berth/registry';
import { fetchManifestBytes, parseIndexManifests, repositoryOf, withResolver } from './manifest.js';
import { ArtifactMediaType, type ArtifactDescriptor, type ArtifactOptions } from './types.js';

/** The fallback tag of a subject: `sha256:<hex>` becomes `sha256-<hex>`. */
export function referrersTag(digest: string): string {
  return digest.replace(':', '-');
}

export interface ReferrersResult {
  readonly referrers: ArtifactDescriptor[];
  /** Where they came from: the referrers API, or the fallback tag (`none` also when it does not exist yet). */
  readonly via: 'api' | 'tag';
}

const keyOf = (d: Descriptor) => `${d.mediaType} ${d.digest} ${d.size}`;

/** The fallback index of `digest` in `repo` (`host/repository`): its descriptor and manifests; none when untagged. */
export async function readReferrersIndex(resolver: HttpResolver, repo: string, digest: string, signal?: AbortSignal): Promise<{ index?: Descriptor; manifests: ArtifactDescriptor[] }> {
  let index: Descriptor;
  try {
    index = (await resolver.resolve(`${repo}:${referrersTag(digest)}`, signal ? { signal } : {})).descriptor;
  } catch (err) {
    if (isNotFound(err)) return { manifests: [] };
    throw err;
  }
  const bytes = await fetchManifestBytes(resolver, repo, index, signal);
  return { index, manifests: parseIndexManifests(bytes, index.digest) };
}

/**
 * Adds `referrer` to the fallback index of `subject` (no change when it is listed already): pushes the new index
 * under the tag, then deletes the index it replaced (best effort: a registry without deletes keeps it untagged).
 */
export async function addToReferrersIndex(resolver: HttpResolver, repo: string, subject: Descriptor, referrer: ArtifactDescriptor, signal?: AbortSignal): Promise<Descriptor> {
  const { index: old, manifests } = await readReferrersIndex(resolver, repo, subject.digest, signal);
  const seen = new Set<string>();
  const updated: ArtifactDescriptor[] = [];
  for (const m of [...manifests, referrer]) {
    if (seen.has(keyOf(m))) continue;
    seen.add(keyOf(m));
    updated.push(m);
  }
  if (old !== undefined && updated.length === manifests.length) return old;
  // the field order of oras-go's generateIndex (Go's struct order), so both write the same bytes
  const bytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: ArtifactMediaType.Index, manifests: updated }));
  const desc: Descriptor = { mediaType: ArtifactMediaType.Index, digest: sha256Digest(bytes), size: bytes.length };
  await resolver.pusher(repo).push(desc, async function* () {
    yield bytes;
  }, { reference: referrersTag(subject.digest), ...(signal ? { signal } : {}) });
  if (old !== undefined && old.digest !== desc.digest) {
    await resolver.deleteManifest(repo, old.digest, signal ? { signal } : {}).catch(() => false);
  }
  return desc;
}

/** The referrers of `digest` in `repo`: the API's answer (filtered here if the registry did not), else the tag's. */
export async function referrersOf(resolver: HttpResolver, repo: string, digest: string, options: { artifactType?: string; signal?: AbortSignal } = {}): Promise<ReferrersResult> {
  const { artifactType, signal } = options;
  const filter = (list: readonly ArtifactDescriptor[]) => (artifactType ? list.filter((d) => d.artifactType === artifactType) : [...list]);
  const api = await resolver.referrers(repo, digest, { ...(artifactType ? { artifactType } : {}), ...(signal ? { signal } : {}) });
  if (api !== undefined) {
    const listed = api.manifests as ArtifactDescriptor[];
    return { referrers: api.filtered ? [...listed] : filter(listed), via: 'api' };
  }
  return { referrers: filter((await readReferrersIndex(resolver, repo, digest, signal)).manifests), via: 'tag' };
}

/**
 * The referrers of the manifest `subjectRef` names (`host/repo:tag` or `host/repo@digest`), optionally only those
 * of one artifact type: through the referrers API, or the `sha256-<hex>` tag when the registry has none.
 */
export async function listReferrers(subjectRef: string, filter: { artifactType?: string } = {}, options: ArtifactOptions = {}): Promise<ArtifactDescriptor[]> {
  return (await listReferrersVia(subjectRef, filter, options)).referrers;
}

/** listReferrers, and whether the API or the fallback tag answered. */
export async function listReferrersVia(subjectRef: string, filter: { artifactType?: string } = {}, options: ArtifactOptions = {}): Promise<ReferrersResult> {
  const remote = parseRemoteRef(subjectRef);
  return withResolver(options, async (resolver) => {
    const digest = remote.digest ?? (await resolver.resolve(subjectRef, options.signal ? { signal: options.signal } : {})).descriptor.digest;
    return referrersOf(resolver, repositoryOf(remote), digest, { ...filter, ...(options.signal ? { signal: options.signal } : {}) });
  });
}
