// One blob from a registry into a content store, streamed (never held in memory), size and digest verified by the
// store, resumable, and labelled with its distribution source as a pull does. Used by `berth content fetch-blob`;
// the pull of the images issue is the same steps for every blob of an image.
import { writeBlob, type ContentStore, type OpContext, type WriteBlobResult } from '@berth/core';
import type { CredentialsFunction } from './auth.js';
import { createResolver, type HttpResolver } from './resolver.js';
import { MAX_LABEL_LENGTH, addDistributionSource, distributionSourceKey, refKeyFor, type RemoteRef } from './remote.js';

export interface FetchBlobOptions {
  readonly plainHttp?: boolean;
  readonly hostsDir?: string;
  readonly credentials?: CredentialsFunction;
  /** Use this resolver instead of one made (and closed) for this fetch. */
  readonly resolver?: HttpResolver;
  readonly mediaType?: string;
  readonly onProgress?: (offset: number, total: number, fetched: number, elapsedMs: number) => void;
}

export interface FetchBlobResult extends WriteBlobResult {
  /** The ingest ref used. */
  readonly ref: string;
  /** Bytes transferred from the registry by this run (0 when the blob was already present). */
  readonly fetched: number;
  /** Where this run started in the blob (> 0 when it resumed an earlier ingest). */
  readonly resumedAt: number;
  readonly elapsedMs: number;
  /** The distribution-source label set on the blob, if it was set (it is skipped when too long). */
  readonly label?: { readonly key: string; readonly value: string };
}

/**
 * Fetches `digest` from the repository of `remote` into the store: HEAD for its size (so the store verifies size
 * and digest), then a write whose source is a GET opened lazily at the resume offset (not at all when the store
 * already has the blob), then the distribution-source label.
 */
export async function fetchBlob(store: ContentStore, ctx: OpContext, remote: RemoteRef, digest: string, options: FetchBlobOptions = {}): Promise<FetchBlobResult> {
  const resolver =
    options.resolver ??
    createResolver({
      ...(options.plainHttp !== undefined ? { plainHttp: options.plainHttp } : {}),
      ...(options.hostsDir !== undefined ? { hostsDir: options.hostsDir } : {}),
      ...(options.credentials ? { credentials: options.credentials } : {}),
    });
  try {
    const fetcher = resolver.fetcher(`${remote.host}/${remote.repository}`);
    const started = Date.now();
    const { size } = await fetcher.stat(digest, options.mediaType ? { mediaType: options.mediaType } : {});
    const ref = refKeyFor(digest, options.mediaType);
    const desc = { mediaType: options.mediaType ?? 'application/octet-stream', digest, size: size ?? 0 };
    let resumedAt = 0;
    let fetched = 0;
    const source = (offset: number) =>
      (async function* () {
        resumedAt = offset;
        // everything was written before, only the commit is missing: a Range at the end would be refused
        if (size !== undefined && offset >= size) return;
        const body = await fetcher.fetch(desc, { offset });
        for await (const chunk of body.chunks) {
          fetched += chunk.length;
          yield chunk;
        }
      })();
    const result = await writeBlob(store, ctx, source, {
      ref,
      expected: digest,
      ...(size !== undefined ? { total: size } : {}),
      discardOnCommitFailure: true,
      onProgress: (offset, total) => options.onProgress?.(offset, total, fetched, Date.now() - started),
    });
    const label = await labelSource(store, ctx, remote, digest);
    return { ...result, ref, fetched, resumedAt, elapsedMs: Date.now() - started, ...(label ? { label } : {}) };
  } finally {
    if (!options.resolver) resolver.close();
  }
}

/** Adds the repository to `containerd.io/distribution.source.<hostname>` of the blob (read, then an update of that key). */
async function labelSource(store: ContentStore, ctx: OpContext, remote: RemoteRef, digest: string): Promise<{ key: string; value: string } | undefined> {
  const key = distributionSourceKey(remote.hostname);
  const current = (await store.info(ctx, digest)).labels[key];
  const value = addDistributionSource(current, remote.repository);
  if (key.length + value.length > MAX_LABEL_LENGTH) return undefined;
  if (value !== current) await store.update(ctx, { digest, labels: { [key]: value } }, [`labels.${key}`]);
  return { key, value };
}
