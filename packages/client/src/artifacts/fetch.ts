// fetchArtifact: an artifact's manifest, config and layers into a content store (berthd's, through
// ContentStoreProxy, when the caller is the CLI) under the caller's lease, without unpacking anything. The
// children are written first and the manifest last, labelled `containerd.io/gc.ref.content.*` for them, so that
// whoever roots the manifest (an image record, a gc.root label) keeps the whole artifact once the lease is gone.
import { writeBlob, type ContentStore } from '@berth/core';
import { addDistributionSource, distributionSourceKey, MAX_LABEL_LENGTH, parseRemoteRef, refKeyFor, type HttpFetcher, type RemoteRef } from '@berth/registry';
import { repositoryOf, withResolver } from './manifest.js';
import { resolveWith } from './resolve.js';
import type { ArtifactDescriptor, ArtifactOptions, FetchContext, ResolvedArtifact } from './types.js';

const GC_REF = 'containerd.io/gc.ref.content';

/** The labels a manifest gets for its config and layers (containerd's names for an image manifest's children). */
export function artifactChildLabels(resolved: Pick<ResolvedArtifact, 'manifest'>): Record<string, string> {
  const labels: Record<string, string> = { [`${GC_REF}.config`]: resolved.manifest.config.digest };
  resolved.manifest.layers.forEach((l, i) => (labels[`${GC_REF}.l.${i}`] = l.digest));
  return labels;
}

export interface FetchArtifactResult {
  readonly descriptor: ArtifactDescriptor;
  readonly name: string;
  /** Every blob written (or found there already): config, layers, then the manifest. */
  readonly blobs: readonly { readonly digest: string; readonly size: number; readonly existed: boolean }[];
}

/**
 * Writes one blob (`source` opened at the ingest's offset) with `labels` and the distribution-source label; when
 * the store has it already, adds what this fetch knows without dropping the labels it has.
 */
async function writeLabelled(store: ContentStore, ctx: FetchContext, desc: ArtifactDescriptor, remote: RemoteRef, labels: Record<string, string>, source: (offset: number) => AsyncIterable<Uint8Array>) {
  const key = distributionSourceKey(remote.hostname);
  const result = await writeBlob(store, ctx, source, { ref: refKeyFor(desc.digest, desc.mediaType), total: desc.size, expected: desc.digest, discardOnCommitFailure: true, labels: { ...labels, [key]: remote.repository } });
  if (result.existed) {
    const info = await store.info(ctx, desc.digest);
    const sources = addDistributionSource(info.labels[key], remote.repository);
    const update: Record<string, string> = { ...labels };
    if (key.length + sources.length <= MAX_LABEL_LENGTH) update[key] = sources;
    const changed = Object.entries(update).filter(([k, v]) => info.labels[k] !== v);
    if (changed.length > 0) await store.update(ctx, { digest: desc.digest, labels: Object.fromEntries(changed) }, changed.map(([k]) => `labels.${k}`));
  }
  return { digest: desc.digest, size: desc.size, existed: result.existed };
}

function fromRegistry(fetcher: HttpFetcher, desc: ArtifactDescriptor, signal?: AbortSignal) {
  return (offset: number) =>
    (async function* () {
      // everything was written before, only the commit is missing: a Range at the end would be refused
      if (offset >= desc.size && desc.size > 0) return;
      const body = await fetcher.fetch(desc, { offset, ...(signal ? { signal } : {}) });
      yield* body.chunks;
    })();
}

/**
 * Fetches the artifact `ref` into `store` under `ctx.lease` (which must exist: the caller creates it and decides
 * when it goes): config and layers as blobs, then the manifest. Nothing is unpacked. Returns the manifest's descriptor.
 */
export async function fetchArtifact(ref: string, store: ContentStore, ctx: FetchContext, options: ArtifactOptions = {}): Promise<ArtifactDescriptor> {
  return (await fetchArtifactDetailed(ref, store, ctx, options)).descriptor;
}

/** fetchArtifact, with what it wrote. */
export async function fetchArtifactDetailed(ref: string, store: ContentStore, ctx: FetchContext, options: ArtifactOptions = {}): Promise<FetchArtifactResult> {
  const remote = parseRemoteRef(ref);
  const signal = options.signal;
  return withResolver(options, async (resolver) => {
    const resolved = await resolveWith(resolver, ref, signal);
    const fetcher = resolver.fetcher(repositoryOf(remote));
    const blobs: FetchArtifactResult['blobs'][number][] = [];
    const seen = new Set<string>();
    for (const child of [resolved.manifest.config, ...resolved.manifest.layers]) {
      if (seen.has(child.digest)) continue;
      seen.add(child.digest);
      blobs.push(await writeLabelled(store, ctx, child, remote, {}, fromRegistry(fetcher, child, signal)));
    }
    const { descriptor, bytes } = resolved;
    // the manifest's bytes were read (and digest-checked) by the resolve: written from memory
    const fromMemory = (offset: number) =>
      (async function* () {
        yield bytes.subarray(offset);
      })();
    blobs.push(await writeLabelled(store, ctx, descriptor, remote, artifactChildLabels(resolved), fromMemory));
    return { descriptor, name: resolved.name, blobs };
  });
}
