// `berth content fetch-blob REF DIGEST`: one blob from a registry into berthd's content store, streamed through
// Content.Write (never held in memory), labelled with its distribution source as a pull does.
import type { Command } from 'commander';
import { contentStoreToken, InvalidArgumentError } from '@berth/core';
import { BlobNotFoundError, fetchBlob, MAX_LABEL_LENGTH, parseRemoteRef, staticCredentials, type FetchBlobResult } from '@berth/registry';
import { parseDigest } from '../args.js';
import { ReportedFailure, type CliContext } from '../context.js';
import { progressLine } from '../ingest.js';

const MIB = 1024 * 1024;

export const mib = (bytes: number): string => `${(bytes / MIB).toFixed(2)} MiB`;

/** MiB per second; '-' when no time has passed. */
export const mibPerSecond = (bytes: number, ms: number): string => (ms > 0 ? `${(bytes / MIB / (ms / 1000)).toFixed(1)} MiB/s` : '-');

export function registerFetchBlob(content: Command, ctx: CliContext): void {
  content
    .command('fetch-blob')
    .description('fetch one blob from a registry into the content store (streamed, digest and size verified)')
    .argument('<ref>', 'repository reference: host[:port]/repository[:tag]')
    .argument('<digest>', 'digest of the blob')
    .option('--plain-http', 'talk http instead of https to the registry (loopback registries are http anyway, as in containerd)')
    .option('--hosts-dir <dir>', "registry host configuration in containerd's certs.d layout (<dir>/<host>/hosts.toml: mirrors, CA, client certificates)")
    .option('--user <user:secret>', 'registry credentials (default: ~/.docker/config.json)')
    .option('--media-type <type>', 'media type of the blob: sent in Accept, and names the ingest like a pull (layer-<digest>, ...)')
    .action(async (refText: string, digestText: string, opts: { plainHttp?: boolean; mediaType?: string; hostsDir?: string; user?: string }) => {
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
        result = await fetchBlob(await ctx.resolve(contentStoreToken), ctx.op, remote, digest, {
          plainHttp: opts.plainHttp,
          mediaType: opts.mediaType,
          ...(opts.hostsDir !== undefined ? { hostsDir: opts.hostsDir } : {}),
          ...(opts.user !== undefined ? { credentials: staticCredentials(opts.user) } : {}),
          onProgress: progress?.update,
        });
      } catch (err) {
        progress?.done();
        // Only the registry's answer is "not found in REF": a blob the store lost meanwhile (collected before it
        // was labelled, without --lease) keeps its own message.
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
