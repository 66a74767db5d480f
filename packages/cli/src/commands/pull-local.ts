// `berth pull --local`: the pull runs in this process (@berth/images' pull, the registry client here) and writes
// through the daemon's services, as `ctr images pull` does; the roles come from the CLI's composition (proxies).
import { applierToken, contentStoreToken, imagesToken, leasesToken, NotImplementedError, snapshottersToken, type Token } from '@berth/core';
import { parsePlatform, pull, type ImageServices, type Platform } from '@berth/images';
import { createResolver, refKeyFor } from '@berth/registry';
import type { CliContext } from '../context.js';
import type { PullProgressRenderer } from '../pull-progress.js';
import { parseUser, type PullCommandOptions } from './pull.js';

async function role<T>(ctx: CliContext, token: Token<T>): Promise<T> {
  try {
    return await ctx.resolve(token);
  } catch (err) {
    if ((err as { code?: unknown } | null)?.code === 'BERTH_ERR_PLUGIN_DEP_MISSING') {
      throw new NotImplementedError(`berth pull --local needs a client-side ${token.id} (a proxy of the daemon's service), which this berth does not compose yet; pull without --local`, { cause: err });
    }
    throw err;
  }
}

export async function pullLocally(ctx: CliContext, ref: string, opts: PullCommandOptions, renderer: PullProgressRenderer): Promise<string> {
  const services: ImageServices = {
    content: await role(ctx, contentStoreToken),
    images: await role(ctx, imagesToken),
    leases: await role(ctx, leasesToken),
    snapshotters: await role(ctx, snapshottersToken),
    applier: await role(ctx, applierToken),
  };
  const credentials = opts.user ? parseUser(opts.user) : undefined;
  const resolver = createResolver({
    ...(opts.plainHttp ? { plainHttp: true } : {}),
    ...(opts.hostsDir ? { hostsDir: opts.hostsDir } : {}),
    ...(credentials ? { credentials: async () => credentials } : {}),
  });
  const platforms: readonly Platform[] | 'all' | undefined = opts.allPlatforms ? 'all' : opts.platform?.length ? opts.platform.map(parsePlatform) : undefined;
  const timer = setInterval(() => renderer.tick(), 100);
  try {
    renderer.update({ event: `Pulling from ${ref}`, name: '', progress: 0, total: 0 });
    const result = await pull(services, ctx.op, {
      ref,
      resolver,
      ...(platforms ? { platforms } : {}),
      unpack: opts.unpack !== false,
      ...(opts.snapshotter ? { snapshotter: opts.snapshotter } : {}),
      onProgress: (e) => renderer.update({ event: e.state, name: refKeyFor(e.descriptor.digest, e.descriptor.mediaType), progress: e.offset, total: e.descriptor.size }),
    });
    return result.image.target.digest;
  } finally {
    clearInterval(timer);
    resolver.close();
  }
}
