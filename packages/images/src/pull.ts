// Pull: resolve a reference, fetch the index, manifests, configs and layers into the content store under a lease
// (resuming ingests an interrupted pull left, skipping blobs that are there), label every blob as containerd's
// client does, create or update the image record, and unpack each chosen platform while its layers still download.
import { randomBytes } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import {
  errdefOf,
  errorFromErrdef,
  InvalidArgumentError,
  isAlreadyExists,
  isNotFound,
  isUnavailable,
  LEASE_EXPIRE_LABEL,
  NotFoundError,
  readBlob,
  writeBlob,
  type ContentIngester,
  type ContentStore,
  type IngestManager,
  type Descriptor,
  type Image,
  type OpContext,
} from '@berth/core';
import { addDistributionSource, distributionSourceKey, MAX_LABEL_LENGTH, parseRemoteRef, refKeyFor, type Fetcher } from '@berth/registry';
import { Limiter } from './limiter.js';
import { childrenLabels, MAX_DOCUMENT_SIZE, parseImageConfig, parseIndex, parseManifest, type ImageConfig, type ImageDescriptor } from './manifests.js';
import { isIndexType, isManifestType, isNonDistributable, isSchema1Type } from './media-types.js';
import { allPlatforms, defaultPlatform, normalizePlatform, onlyPlatform, type PlatformMatcher } from './platforms.js';
import { convertSchema1 } from './schema1.js';
import type { ImageServices, LayerState, Platform, PullFunction, PullOptions, PullResult } from './types.js';
import { unpackLayers, type LayerSource } from './unpack.js';

/** How long the pull's lease keeps what it fetched if the pull never deletes it (containerd's client: 24 h). */
export const PULL_LEASE_EXPIRY_MS = 24 * 60 * 60 * 1000;
export const DEFAULT_SNAPSHOTTER = 'overlayfs';
export const DEFAULT_CONCURRENCY = 3;

/** containerd's random ID part (leases.WithRandomID, the unpacker's uniquePart): `<nanosecond of the second>-<3 random bytes>`. */
export function uniquePart(): string {
  const nanos = Number((process.hrtime.bigint() + BigInt(Date.now()) * 1_000_000n) % 1_000_000_000n);
  return `${nanos}-${randomBytes(3).toString('base64url')}`;
}

/** Go's time.RFC3339 of a UTC time (no fraction), as containerd writes gc.expire. */
function rfc3339(date: Date): string {
  return date.toISOString().replace(/\.\d+Z$/, 'Z');
}

/** The error again, of the same errdef, with what was being done in front of its message and it as the cause. */
export function withContext(err: unknown, doing: string): Error {
  const wrapped = errorFromErrdef(errdefOf(err), `${doing}: ${(err as Error).message}`);
  Object.defineProperty(wrapped, 'cause', { value: err, enumerable: false, configurable: true, writable: true });
  return wrapped;
}

/** One manifest chosen for the pull: what it holds, and the platform it is for. */
interface Chosen {
  readonly manifest: Descriptor;
  readonly platform: Platform;
  readonly config: Descriptor;
  readonly imageConfig: ImageConfig;
  readonly layers: readonly LayerSource[];
}

class PullRun {
  readonly limiter: Limiter;
  readonly matchers: readonly PlatformMatcher[] | 'all';
  /** Layer downloads started: awaited before the pull returns or throws, so no writer outlives it. */
  readonly pending: Promise<void>[] = [];
  private readonly remote;

  constructor(
    readonly services: ImageServices,
    readonly ctx: OpContext,
    readonly options: PullOptions,
    readonly name: string,
    readonly fetcher: Fetcher,
  ) {
    this.limiter = new Limiter(Math.max(1, options.concurrency ?? DEFAULT_CONCURRENCY));
    const platforms = options.platforms ?? [defaultPlatform()];
    this.matchers = platforms === 'all' ? 'all' : platforms.map((p) => onlyPlatform(normalizePlatform(p)));
    this.remote = parseRemoteRef(name);
  }

  get content(): ContentStore {
    return this.services.content;
  }

  /**
   * The store's ingest roles, with writer() waiting while another writer holds the ref (a concurrent pull of the
   * same blob), as containerd's content.OpenWriter does: random backoff doubling up to 2 s, until the pull is
   * aborted. The other pull's commit then makes this one's open an AlreadyExists.
   */
  readonly ingester: ContentIngester & IngestManager = {
    scope: 'namespaced',
    writer: async (ctx, options) => {
      for (let ceiling = 16; ; ceiling = Math.min(ceiling * 2, 2048)) {
        try {
          return await this.content.writer(ctx, options);
        } catch (err) {
          if (!isUnavailable(err)) throw err;
          await delay(Math.floor(Math.random() * ceiling), ctx.signal);
        }
      }
    },
    status: (ctx, ref) => this.content.status(ctx, ref),
    listStatuses: (ctx, filters) => this.content.listStatuses(ctx, filters),
    abort: (ctx, ref) => this.content.abort(ctx, ref),
  };

  progress(descriptor: Descriptor, state: LayerState, offset: number): void {
    this.options.onProgress?.({ descriptor, state, offset });
  }

  /**
   * The blob into the content store (resuming its ingest), verified by size and digest; then its distribution label
   * (not for schema 1, whose converter in containerd sets none).
   */
  async fetch(desc: Descriptor, options: { distributionSource?: boolean } = {}): Promise<void> {
    await this.limiter.run(async () => {
      this.ctx.signal?.throwIfAborted();
      let transferred = false;
      // the size as the store knows it (a blob of unknown size, as schema 1 layers are, that another namespace
      // has already: the writer's status says its size, and everything is there)
      let storeTotal = desc.size;
      let first = true;
      try {
        const result = await writeBlob(
          this.ingester,
          this.ctx,
          (offset) =>
            (async function* (run: PullRun) {
              // all bytes were written before, only the commit is missing: a Range at the end would be refused
              if (storeTotal > 0 && offset >= storeTotal) return;
              const body = await run.fetcher.fetch(desc, { offset, ...(run.ctx.signal ? { signal: run.ctx.signal } : {}) });
              transferred = true;
              yield* body.chunks;
            })(this),
          {
            ref: refKeyFor(desc.digest, desc.mediaType),
            total: desc.size,
            expected: desc.digest,
            discardOnCommitFailure: true,
            onProgress: (offset, total) => {
              if (first) storeTotal = total || desc.size;
              first = false;
              this.progress(desc, 'downloading', offset);
            },
          },
        );
        this.progress(desc, result.existed && !transferred ? 'exists' : 'done', desc.size);
      } catch (err) {
        throw withContext(err, `failed to fetch ${desc.mediaType} ${desc.digest}`);
      }
    });
    if (options.distributionSource !== false) await this.labelSource(desc);
  }

  /** Adds the repository to `containerd.io/distribution.source.<host>` of the blob (docker.AppendDistributionSourceLabel). */
  async labelSource(desc: Descriptor): Promise<void> {
    const key = distributionSourceKey(this.remote.hostname);
    const current = (await this.content.info(this.ctx, desc.digest)).labels[key];
    const value = addDistributionSource(current, this.remote.repository);
    if (key.length + value.length > MAX_LABEL_LENGTH || value === current) return;
    await this.content.update(this.ctx, { digest: desc.digest, labels: { [key]: value } }, [`labels.${key}`]);
  }

  /** Sets the labels that differ from what the blob has (one update naming each key). */
  async setLabels(digest: string, labels: Record<string, string>): Promise<void> {
    const current = (await this.content.info(this.ctx, digest)).labels;
    const changed = Object.entries(labels).filter(([k, v]) => current[k] !== v);
    if (changed.length === 0) return;
    await this.content.update(this.ctx, { digest, labels: Object.fromEntries(changed) }, changed.map(([k]) => `labels.${k}`));
  }

  async readDocument(desc: Descriptor): Promise<Buffer> {
    if (desc.size > MAX_DOCUMENT_SIZE) throw new InvalidArgumentError(`${desc.digest}: ${desc.size} bytes is more than the limit of ${MAX_DOCUMENT_SIZE} for a manifest, index or config`);
    const parts: Buffer[] = [];
    for await (const chunk of readBlob(this.content, this.ctx, desc.digest)) parts.push(chunk);
    return Buffer.concat(parts);
  }

  /** containerd's FilterPlatforms + LimitManifests(1) per requested platform (all of them with `all`). */
  choose(children: readonly ImageDescriptor[]): ImageDescriptor[] {
    if (this.matchers === 'all') return [...children];
    const keep = new Set<ImageDescriptor>();
    for (const m of this.matchers) {
      const candidates = children.filter((c) => c.platform === undefined || m.match(c.platform));
      // stable: equal ranks keep the index's order; entries without a platform go last
      candidates.sort((a, b) => (a.platform === undefined ? 1 : b.platform === undefined ? -1 : m.compare(a.platform, b.platform)));
      if (candidates[0]) keep.add(candidates[0]);
    }
    return children.filter((c) => keep.has(c));
  }

  /** Walks from `desc`, returning the manifests chosen below it (platform from the index entry, else its config). */
  async walk(desc: ImageDescriptor, platform: Platform | undefined): Promise<Chosen[]> {
    if (isIndexType(desc.mediaType)) {
      await this.fetch(desc);
      const index = parseIndex(await this.readDocument(desc), desc);
      await this.setLabels(desc.digest, childrenLabels(index.manifests));
      const picked = this.choose(index.manifests);
      if (picked.length === 0) {
        throw new NotFoundError(`no match for platform in manifest ${desc.digest}: not found`);
      }
      // in the index's order, whichever finishes first
      return (await Promise.all(picked.map((child) => this.walk(child, child.platform ?? platform)))).flat();
    }
    if (isManifestType(desc.mediaType)) {
      await this.fetch(desc);
      const manifest = parseManifest(await this.readDocument(desc), desc);
      await this.setLabels(desc.digest, childrenLabels([manifest.config, ...manifest.layers]));
      await this.fetch(manifest.config);
      const imageConfig = parseImageConfig(await this.readDocument(manifest.config), manifest.config);
      const layers = manifest.layers.map((layer) => ({ descriptor: layer, fetched: this.fetchLayer(layer) }));
      const platformOf = platform ?? { os: imageConfig.os || 'linux', architecture: imageConfig.architecture, ...(imageConfig.variant ? { variant: imageConfig.variant } : {}) };
      return [{ manifest: desc, platform: normalizePlatform(platformOf), config: manifest.config, imageConfig, layers }];
    }
    throw new InvalidArgumentError(`${desc.digest}: media type ${desc.mediaType} is not an image manifest or index`);
  }

  /** Starts a layer's download; the promise is observed at once so a failure is never unhandled. */
  fetchLayer(layer: ImageDescriptor): Promise<void> {
    if (isNonDistributable(layer.mediaType) && layer.urls && layer.urls.length > 0) {
      return Promise.resolve();
    }
    this.progress(layer, 'waiting', 0);
    const p = this.fetch(layer);
    p.catch(() => undefined);
    this.pending.push(p);
    return p;
  }
}

/** Creates the image, or on AlreadyExists points it at the new target (with the labels asked for), as ctr does. */
async function storeImage(services: ImageServices, ctx: OpContext, name: string, target: Descriptor, labels: Record<string, string>): Promise<Image> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await services.images.create(ctx, { name, target, labels });
    } catch (err) {
      if (!isAlreadyExists(err)) throw err;
    }
    try {
      return await services.images.update(ctx, { name, target, labels }, ['target', ...Object.keys(labels).map((k) => `labels.${k}`)]);
    } catch (err) {
      // removed in between: create again
      if (!isNotFound(err) || attempt >= 2) throw err;
    }
  }
}

/** Runs `body` under the context's lease, or under a new expiring lease that is deleted when `body` succeeds. */
async function withLease<T>(services: ImageServices, ctx: OpContext, body: (ctx: OpContext) => Promise<T>): Promise<T> {
  if (ctx.lease) return body(ctx);
  const id = uniquePart();
  await services.leases.create(ctx, { id, labels: { [LEASE_EXPIRE_LABEL]: rfc3339(new Date(Date.now() + PULL_LEASE_EXPIRY_MS)) } });
  const result = await body({ ...ctx, lease: id });
  // Only after success: a failed or interrupted pull leaves its lease to expire, so that GC cannot take what it
  // fetched before the retry resumes it (ctr deletes the lease either way).
  await services.leases.delete({ namespace: ctx.namespace }, id).catch(() => undefined);
  return result;
}

export const pull: PullFunction = async (services, ctx, options): Promise<PullResult> => {
  const resolved = await options.resolver.resolve(options.ref, options.signal ? { signal: options.signal } : undefined);
  const fetcher = options.resolver.fetcher(resolved.name);
  // one signal for the whole pull: the caller's, and the first failure stops the other downloads
  const stop = new AbortController();
  const onAbort = () => stop.abort(options.signal?.reason);
  options.signal?.addEventListener('abort', onAbort, { once: true });
  if (options.signal?.aborted) onAbort();
  try {
    return await withLease(services, { ...ctx, signal: stop.signal }, async (lctx) => {
      const run = new PullRun(services, lctx, options, resolved.name, fetcher);
      try {
        return await pullWith(run, services, lctx, options, resolved.descriptor, resolved.name, stop);
      } catch (err) {
        stop.abort(err);
        throw err;
      } finally {
        await Promise.allSettled(run.pending);
      }
    });
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
  }
};

async function pullWith(
  run: PullRun,
  services: ImageServices,
  lctx: OpContext,
  options: PullOptions,
  root: Descriptor,
  name: string,
  stop: AbortController,
): Promise<PullResult> {
  let target: Descriptor = root;
  let manifests: Chosen[];
  if (isSchema1Type(target.mediaType)) {
    const converted = await convertSchema1(run, target);
    target = converted.manifest;
    manifests = [converted.chosen];
  } else {
    manifests = await run.walk(root, undefined);
  }
  const unpack = options.unpack !== false;
  const unpackOnly = options.unpackPlatforms?.map((p) => onlyPlatform(normalizePlatform(p)));
  const snapshotterName = options.snapshotter ?? DEFAULT_SNAPSHOTTER;
  const jobs = manifests.map(async (m) => {
    if (!unpack || (unpackOnly && !unpackOnly.some((only) => only.match(m.platform)))) {
      await Promise.all(m.layers.map((l) => l.fetched));
      return undefined;
    }
    const chainId = await unpackLayers(
      {
        content: services.content,
        snapshotter: services.snapshotters.get(snapshotterName),
        snapshotterName,
        applier: services.applier,
        ctx: lctx,
        unique: uniquePart,
        onProgress: (d, state) => run.progress(d, state, d.size),
      },
      m.config,
      m.imageConfig,
      m.layers,
    );
    return { platform: m.platform, chainId, snapshotter: snapshotterName };
  });
  // the first failure stops the other downloads and unpacks at once
  for (const job of jobs) job.catch((err: unknown) => stop.abort(err));
  const settled = await Promise.allSettled(jobs);
  const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) throw failed.reason;
  const image = await storeImage(services, lctx, name, target, { ...options.labels });
  const unpacked = settled.flatMap((s) => (s.status === 'fulfilled' && s.value ? [s.value] : []));
  return { image, unpacked };
}

export type { PullRun };
