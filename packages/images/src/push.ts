// Push: walk an image's tree in the content store (index -> the manifests chosen -> config and layers), check that
// everything to push is there before sending anything, push the blobs (skipping what the registry has, mounting
// from another repository of the same registry where the distribution source label names one), then the
// manifests children first and the root last under the reference's tag, and label each pushed blob with the
// repository it is now in.
import { isNotFound, NotFoundError, readBlob, type Descriptor, type OpContext } from '@berth/core';
import { addDistributionSource, distributionSourceKey, MAX_LABEL_LENGTH, parseRemoteRef, type Pusher, type PushOutcome } from '@berth/registry';
import { Limiter } from './limiter.js';
import { MAX_DOCUMENT_SIZE, parseIndex, parseManifest, type ImageDescriptor } from './manifests.js';
import { isIndexType, isManifestType, isNonDistributable } from './media-types.js';
import { anyPlatform, formatPlatform, samePlatform, type PlatformMatcher } from './platforms.js';
import { DEFAULT_CONCURRENCY, withContext } from './pull.js';
import type { PushFunction, PushOptions, PushResult, PushState } from './types.js';

/** One descriptor to push, and where it was found. */
interface Node {
  readonly descriptor: Descriptor;
  /** The labels of its content (the distribution sources among them). */
  readonly labels: Readonly<Record<string, string>>;
}

class PushRun {
  /** Blobs (configs and layers) in walk order, one per digest. */
  readonly blobs = new Map<string, Node>();
  /** Manifests and indexes, children before parents: the root is last. */
  readonly manifests: Node[] = [];
  private readonly seen = new Set<string>();

  constructor(
    readonly services: Parameters<PushFunction>[0],
    readonly ctx: OpContext,
    readonly matcher: PlatformMatcher | undefined,
  ) {}

  /** The content's labels, or a NotFound naming the digest when it is not in the content store. */
  async info(desc: Descriptor): Promise<Readonly<Record<string, string>>> {
    try {
      return (await this.services.content.info(this.ctx, desc.digest)).labels;
    } catch (err) {
      if (isNotFound(err)) {
        throw new NotFoundError(`content ${desc.digest} (${desc.mediaType}) is not in the content store: pull it (that platform, or --all-platforms) first`);
      }
      throw err;
    }
  }

  async readDocument(desc: Descriptor): Promise<Buffer> {
    if (desc.size > MAX_DOCUMENT_SIZE) throw new NotFoundError(`${desc.digest}: ${desc.size} bytes is too large for a manifest`);
    const parts: Buffer[] = [];
    for await (const chunk of readBlob(this.services.content, this.ctx, desc.digest)) parts.push(chunk);
    return Buffer.concat(parts);
  }

  /** Collects `desc` and what it references (post-order for manifests); throws before anything is pushed. */
  async walk(desc: ImageDescriptor): Promise<void> {
    if (this.seen.has(desc.digest)) return;
    this.seen.add(desc.digest);
    const labels = await this.info(desc);
    if (isIndexType(desc.mediaType)) {
      const index = parseIndex(await this.readDocument(desc), desc);
      const chosen = this.matcher ? index.manifests.filter((m) => m.platform === undefined || this.matcher!.match(m.platform)) : index.manifests;
      for (const child of chosen) await this.walk(child);
      this.manifests.push({ descriptor: desc, labels });
      return;
    }
    if (isManifestType(desc.mediaType)) {
      const manifest = parseManifest(await this.readDocument(desc), desc);
      for (const blob of [manifest.config, ...manifest.layers]) {
        // ctr push skips non-distributable layers unless asked (--allow-non-distributable-blobs)
        if (isNonDistributable(blob.mediaType) || this.blobs.has(blob.digest)) continue;
        this.blobs.set(blob.digest, { descriptor: blob, labels: await this.info(blob) });
      }
      this.manifests.push({ descriptor: desc, labels });
      return;
    }
    // anything else as the target is pushed as a blob (ctr pushes what it is pointed at)
    this.blobs.set(desc.digest, { descriptor: desc, labels });
  }
}

/** The index entry a single `--platform` selects, as ctr push does: the first whose platform matches. */
async function selectPlatform(run: PushRun, target: Descriptor, options: PushOptions): Promise<Descriptor> {
  const platforms = options.platforms;
  if (!Array.isArray(platforms) || platforms.length !== 1 || !isIndexType(target.mediaType)) return target;
  const wanted = platforms[0]!;
  await run.info(target);
  const index = parseIndex(await run.readDocument(target), target);
  const match = index.manifests.find((m) => m.platform !== undefined && samePlatform(m.platform, wanted));
  if (!match) throw new NotFoundError(`no manifest for platform ${formatPlatform(wanted)} in index ${target.digest}`);
  return match;
}

export const push: PushFunction = async (services, ctx, options): Promise<PushResult> => {
  const remote = parseRemoteRef(options.ref);
  const localName = options.image ?? options.ref;
  const signal = options.signal;
  signal?.throwIfAborted();
  const image = await services.images.get(ctx, localName).catch((err: unknown) => {
    throw withContext(err, `image ${localName}`);
  });
  const platforms = options.platforms;
  const matcher = Array.isArray(platforms) && platforms.length > 1 ? anyPlatform(platforms) : undefined;
  const run = new PushRun(services, ctx, matcher);
  const root = await selectPlatform(run, image.target, options);
  await run.walk(root);

  const pusher: Pusher = options.resolver.pusher(options.ref);
  const sourceKey = distributionSourceKey(remote.hostname);
  const outcomes = new Map<string, PushOutcome>();
  const stop = new AbortController();
  const onAbort = () => stop.abort(signal?.reason);
  signal?.addEventListener('abort', onAbort, { once: true });
  if (signal?.aborted) onAbort();
  const progress = (descriptor: Descriptor, state: PushState, offset: number) => options.onProgress?.({ descriptor, state, offset });

  const pushOne = async (node: Node, reference: string | undefined): Promise<void> => {
    const desc = node.descriptor;
    stop.signal.throwIfAborted();
    const mountFrom = isManifestType(desc.mediaType) || isIndexType(desc.mediaType) ? [] : (node.labels[sourceKey] ?? '')
      .split(',')
      .filter((r) => r !== '' && r !== remote.repository);
    let outcome: PushOutcome;
    try {
      outcome = await pusher.push(desc, () => readBlob(services.content, ctx, desc.digest), {
        signal: stop.signal,
        ...(mountFrom.length > 0 ? { mountFrom } : {}),
        ...(reference !== undefined ? { reference } : {}),
        onProgress: (sent) => progress(desc, 'uploading', sent),
      });
    } catch (err) {
      throw withContext(err, `failed to push ${desc.mediaType} ${desc.digest}`);
    }
    outcomes.set(desc.digest, outcome);
    progress(desc, outcome === 'uploaded' ? 'done' : outcome, desc.size);
    await labelSource(desc);
  };

  // the registry now has it in this repository: containerd's distribution source label
  const labelSource = async (desc: Descriptor): Promise<void> => {
    const current = (await services.content.info(ctx, desc.digest)).labels[sourceKey];
    const value = addDistributionSource(current, remote.repository);
    if (sourceKey.length + value.length > MAX_LABEL_LENGTH || value === current) return;
    await services.content.update(ctx, { digest: desc.digest, labels: { [sourceKey]: value } }, [`labels.${sourceKey}`]);
  };

  try {
    for (const node of [...run.blobs.values(), ...run.manifests]) progress(node.descriptor, 'waiting', 0);
    const limiter = new Limiter(Math.max(1, options.concurrency ?? DEFAULT_CONCURRENCY));
    const jobs = [...run.blobs.values()].map((node) => limiter.run(() => pushOne(node, undefined)));
    // the first failure stops the other uploads, and is the one reported (not the cancellations it caused)
    let first: { error: unknown } | undefined;
    for (const job of jobs) {
      job.catch((err: unknown) => {
        first ??= { error: err };
        stop.abort(err);
      });
    }
    await Promise.allSettled(jobs);
    if (first) throw first.error;
    // children before parents; only the root carries the tag, the others go by digest
    for (const [i, node] of run.manifests.entries()) {
      const last = i === run.manifests.length - 1;
      await pushOne(node, last ? (remote.tag ?? node.descriptor.digest) : node.descriptor.digest);
    }
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
  const name = `${remote.host}/${remote.repository}${remote.tag ? `:${remote.tag}` : ''}${remote.digest ? `@${remote.digest}` : ''}`;
  return {
    name,
    descriptor: root,
    pushed: [...run.blobs.values(), ...run.manifests].map((n) => ({ descriptor: n.descriptor, outcome: outcomes.get(n.descriptor.digest)! })),
  };
};
