// `berth content fetch-blob REF DIGEST`: one blob from a registry into berthd's content store, streamed through
// Content.Write (never held in memory), labelled with its distribution source as a pull does.
import type { Command } from 'commander';
import type { BerthClient } from '@berth/client';
import { InvalidArgumentError } from '@berth/core';
import { parseDigest } from '../args.js';
import { BlobFetcher, BlobNotFoundError } from '../blob-fetcher.js';
import { ReportedFailure, type CliContext } from '../context.js';
import { MAX_LABEL_LENGTH, addDistributionSource, distributionSourceKey, parseRemoteRef, refKeyFor, type RemoteRef } from '../remote.js';
import { ingest, progressLine, type IngestResult } from '../ingest.js';

const MIB = 1024 * 1024;

export const mib = (bytes: number): string => `${(bytes / MIB).toFixed(2)} MiB`;

/** MiB per second; '-' when no time has passed. */
export const mibPerSecond = (bytes: number, ms: number): string => (ms > 0 ? `${(bytes / MIB / (ms / 1000)).toFixed(1)} MiB/s` : '-');

export interface FetchBlobOptions {
  readonly plainHttp?: boolean;
  readonly mediaType?: string;
  readonly onProgress?: (offset: number, total: number, fetched: number, elapsedMs: number) => void;
}

export interface FetchBlobResult extends IngestResult {
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
 * and digest), then an ingest whose source is a GET opened lazily at the resume offset (not at all when the store
 * already has the blob), then the distribution-source label.
 */
export async function fetchBlob(client: BerthClient, remote: RemoteRef, digest: string, options: FetchBlobOptions = {}): Promise<FetchBlobResult> {
  const fetcher = new BlobFetcher({ host: remote.host, repository: remote.repository, plainHttp: options.plainHttp, mediaType: options.mediaType });
  const started = Date.now();
  const { size } = await fetcher.head(digest);
  const ref = refKeyFor(digest, options.mediaType);
  let resumedAt = 0;
  let fetched = 0;
  const source = (offset: number) =>
    (async function* () {
      resumedAt = offset;
      // everything was written before, only the commit is missing: a Range at the end would be refused
      if (size !== undefined && offset >= size) return;
      const body = await fetcher.open(digest, offset);
      for await (const chunk of body.chunks) {
        fetched += chunk.length;
        yield chunk;
      }
    })();
  const result = await ingest(client, ref, source, {
    expectedDigest: digest,
    ...(size !== undefined ? { expectedSize: size } : {}),
    discardOnCommitFailure: true,
    onProgress: (offset, total) => options.onProgress?.(offset, total, fetched, Date.now() - started),
  });
  const label = await labelSource(client, remote, digest);
  return { ...result, ref, fetched, resumedAt, elapsedMs: Date.now() - started, ...(label ? { label } : {}) };
}

/** Adds the repository to `containerd.io/distribution.source.<hostname>` of the blob (Info, then Update of that key). */
async function labelSource(client: BerthClient, remote: RemoteRef, digest: string): Promise<{ key: string; value: string } | undefined> {
  const key = distributionSourceKey(remote.hostname);
  const { info } = await client.content.Info({ digest });
  const current = info?.labels?.[key];
  const value = addDistributionSource(current, remote.repository);
  if (key.length + value.length > MAX_LABEL_LENGTH) return undefined;
  if (value !== current) await client.content.Update({ info: { digest, labels: { [key]: value } }, update_mask: { paths: [`labels.${key}`] } });
  return { key, value };
}

export function registerFetchBlob(content: Command, ctx: CliContext): void {
  content
    .command('fetch-blob')
    .description('fetch one blob from a registry into the content store (streamed, digest and size verified)')
    .argument('<ref>', 'repository reference: host[:port]/repository[:tag]')
    .argument('<digest>', 'digest of the blob')
    .option('--plain-http', 'talk http instead of https to the registry')
    .option('--media-type <type>', 'media type of the blob: sent in Accept, and names the ingest like a pull (layer-<digest>, ...)')
    .action(async (refText: string, digestText: string, opts: { plainHttp?: boolean; mediaType?: string }) => {
      const remote = parseRemoteRef(refText);
      const digest = parseDigest(digestText);
      if (remote.digest !== undefined && remote.digest !== digest) {
        // ref@digest names a manifest; the blob is the DIGEST argument. Accept it, but never silently mix them up.
        ctx.warn(`fetching blob ${digest}; the digest in ${refText} is ignored`);
      }
      if (opts.mediaType !== undefined && opts.mediaType.trim() === '') throw new InvalidArgumentError('--media-type must not be empty');
      const progress = ctx.io.stderr.isTTY
        ? progressLine(
            ctx,
            (offset: number, total: number, fetched: number, elapsedMs: number) =>
              `${digest}: ${mib(offset)}${total > 0 ? ` / ${mib(total)}` : ''}  ${mibPerSecond(fetched, elapsedMs)}`,
          )
        : undefined;
      let result: FetchBlobResult;
      try {
        result = await fetchBlob(ctx.berth(), remote, digest, {
          plainHttp: opts.plainHttp,
          mediaType: opts.mediaType,
          onProgress: progress?.update,
        });
      } catch (err) {
        progress?.done();
        if (err instanceof BlobNotFoundError) {
          ctx.error(`blob ${digest} not found in ${refText}`);
          throw new ReportedFailure();
        }
        throw err;
      } finally {
        progress?.done();
      }
      if (!result.label) ctx.warn(`distribution source label of ${digest} not updated: it would exceed ${MAX_LABEL_LENGTH} characters`);
      if (ctx.json) {
        return ctx.printJson({
          ref: refText,
          digest: result.digest,
          size: result.size,
          existed: result.existed,
          ingest: result.ref,
          fetched: result.fetched,
          resumed_at: result.resumedAt,
          seconds: result.elapsedMs / 1000,
          labels: result.label ? { [result.label.key]: result.label.value } : {},
        });
      }
      if (result.existed) return ctx.line(`${result.digest}: already present (${mib(result.size)})`);
      const resumed = result.resumedAt > 0 ? `, resumed at ${mib(result.resumedAt)}` : '';
      ctx.line(
        `${result.digest}: fetched ${mib(result.fetched)} in ${(result.elapsedMs / 1000).toFixed(2)}s (${mibPerSecond(result.fetched, result.elapsedMs)}${resumed})`,
      );
    });
}
