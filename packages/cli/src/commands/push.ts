// `berth push REF [LOCAL]`: client-side, as `ctr images push` (@berth/images' push reads the daemon's content and
// images through the CLI's proxies and uploads from this process). LOCAL names the local image when it is not REF.
import type { Command } from 'commander';
import { contentStoreToken, imagesToken, InvalidArgumentError } from '@berth/core';
import { parsePlatform, push, type Platform } from '@berth/images';
import { createResolver, parseRemoteRef, refKeyFor } from '@berth/registry';
import type { CliContext } from '../context.js';
import { PullProgressRenderer, type ProgressMode } from '../pull-progress.js';
import { parseUser } from './pull.js';

export interface PushCommandOptions {
  readonly platform?: string[];
  readonly allPlatforms?: boolean;
  readonly plainHttp?: boolean;
  readonly hostsDir?: string;
  readonly user?: string;
  readonly quiet?: boolean;
}

function progressMode(ctx: CliContext, quiet: boolean | undefined): ProgressMode {
  if (quiet) return 'quiet';
  if (ctx.json) return 'json';
  return ctx.io.stderr.isTTY ? 'tty' : 'plain';
}

/** The platforms of the push: one (that manifest as the tag), several (the index, only theirs), or all of it. */
export function pushPlatforms(opts: PushCommandOptions): readonly Platform[] | 'all' | undefined {
  const platforms = (opts.platform ?? []).map(parsePlatform);
  if (opts.allPlatforms && platforms.length > 0) throw new InvalidArgumentError('--platform and --all-platforms exclude each other');
  return opts.allPlatforms ? 'all' : platforms.length > 0 ? platforms : undefined;
}

export function registerPush(program: Command, ctx: CliContext): void {
  program
    .command('push')
    .description('push an image from the daemon\'s content store to a registry (client-side, as ctr images push)')
    .argument('<ref>', 'where to push: host[:port]/repository[:tag]')
    .argument('[local]', 'the local image to push, when its name is not <ref>')
    .option('--platform <platform>', 'push only this platform, repeatable (one: its manifest as the tag; several: the index with only theirs)', (v: string, prev: string[] = []) => [...prev, v])
    .option('--all-platforms', 'push every platform of an index (the default: the image as it is)')
    .option('--plain-http', 'talk http instead of https to the registry')
    .option('--hosts-dir <dir>', 'certs.d directory with hosts.toml per registry host')
    .option('-u, --user <user:password>', 'registry credentials')
    .option('-q, --quiet', 'print only the reference')
    .action(async (ref: string, local: string | undefined, opts: PushCommandOptions) => {
      parseRemoteRef(ref);
      const platforms = pushPlatforms(opts);
      const credentials = opts.user ? parseUser(opts.user) : undefined;
      const services = { content: await ctx.resolve(contentStoreToken), images: await ctx.resolve(imagesToken) };
      const renderer = new PullProgressRenderer({ mode: progressMode(ctx, opts.quiet), write: (t) => (ctx.json ? ctx.write(t) : ctx.io.stderr.write(t)) });
      const resolver = createResolver({
        ...(opts.plainHttp ? { plainHttp: true } : {}),
        ...(opts.hostsDir ? { hostsDir: opts.hostsDir } : {}),
        ...(credentials ? { credentials: async () => credentials } : {}),
      });
      const timer = setInterval(() => renderer.tick(), 100);
      let result;
      try {
        renderer.update({ event: `Pushing to ${ref}`, name: '', progress: 0, total: 0 });
        result = await push(services, ctx.op, {
          ref,
          resolver,
          ...(local ? { image: local } : {}),
          ...(platforms ? { platforms } : {}),
          onProgress: (e) => renderer.update({ event: e.state, name: refKeyFor(e.descriptor.digest, e.descriptor.mediaType), progress: e.offset, total: e.descriptor.size }),
        });
      } finally {
        clearInterval(timer);
        resolver.close();
      }
      renderer.finish();
      const counts = { uploaded: 0, mounted: 0, exists: 0 };
      for (const p of result.pushed) counts[p.outcome]++;
      if (ctx.json) ctx.write(`${JSON.stringify({ image: ref, digest: result.descriptor.digest, mediaType: result.descriptor.mediaType, ...counts })}\n`);
      else if (opts.quiet) ctx.line(ref);
      else ctx.line(`${ref}: ${result.descriptor.digest} (${counts.uploaded} uploaded, ${counts.mounted} mounted, ${counts.exists} already there)`);
    });
}
