import { implementService, messageCodec, ServiceNames, typeNameOfUrl, type containerd, type google } from '@berth/api';
import {
  InvalidArgumentError,
  NotImplementedError,
  MetricsRegistry,
  opContextOf,
  type Logger,
  type RpcContext,
  type RpcServiceImplementation,
  type RpcServices,
  type Stream,
  type StreamManager,
} from '@berth/core';
import { defaultPlatform, type ImageServices, type Platform, type PullFunction, type PullOptions, type PullProgress } from '@berth/images';
import { parseRemoteRef, type Resolver, type ResolverOptions } from '@berth/registry';
import { ProgressSender } from './progress.js';
import { resolverOptionsOf } from './registry-source.js';

export const OCI_REGISTRY = 'containerd.types.transfer.OCIRegistry';
export const IMAGE_STORE = 'containerd.types.transfer.ImageStore';

export interface TransferDeps {
  readonly streams: StreamManager;
  readonly services: ImageServices;
  readonly pull: PullFunction;
  /** A resolver per transfer; its close(), when it has one, runs when the transfer ends (kept-alive connections). */
  readonly createResolver: (options: ResolverOptions) => Resolver & { close?(): void };
  readonly log: Logger;
  /** Where pulls are counted (the plugin's registry on /v1/metrics). */
  readonly metrics?: MetricsRegistry;
}

/** Pull figures: bytes fetched, pulls by result and time, layer unpack times (from the pull's progress events). */
function meterOf(registry: MetricsRegistry) {
  const meter = {
    pulls: registry.counter('berth_pulls_total', 'Transfer pulls (registry to image store), by result (ok, error).', ['result']),
    seconds: registry.histogram('berth_pull_duration_seconds', 'Time a Transfer pull took, start to image saved.', [0.1, 0.5, 1, 5, 10, 30, 60, 300, 900]),
    bytes: registry.counter('berth_pull_bytes_total', 'Bytes Transfer pulls downloaded from registries (what was already in the store is not counted).'),
    unpack: registry.histogram('berth_pull_layer_unpack_seconds', 'Time a Transfer pull spent unpacking one layer into the snapshotter.', [0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60]),
  };
  meter.pulls.inc({ result: 'ok' }, 0);
  meter.pulls.inc({ result: 'error' }, 0);
  meter.bytes.inc(undefined, 0);
  return meter;
}

/** Follows one pull's progress events: download offsets per blob, and each layer's unpacking-to-done time. */
function pullTracker(meter: ReturnType<typeof meterOf>) {
  const offsets = new Map<string, number>();
  const unpacking = new Map<string, number>();
  return (event: PullProgress) => {
    const { digest } = event.descriptor;
    // A blob the store already had ('exists') was not downloaded; a later 'done' (its unpack) adds nothing then.
    if (event.state === 'exists') offsets.set(digest, Math.max(offsets.get(digest) ?? 0, event.offset));
    else if (event.state === 'downloading' || event.state === 'done') {
      const before = offsets.get(digest) ?? 0;
      if (event.offset > before) meter.bytes.inc(undefined, event.offset - before);
      offsets.set(digest, Math.max(before, event.offset));
    }
    if (event.state === 'unpacking') unpacking.set(digest, performance.now());
    else if (event.state === 'done' && unpacking.has(digest)) {
      meter.unpack.observe((performance.now() - unpacking.get(digest)!) / 1000);
      unpacking.delete(digest);
    }
  };
}

type Transfer = containerd.services.transfer.v1.TransferRequest;

/**
 * containerd.services.transfer.v1.Transfer: a registry source into the image store is a pull (@berth/images'
 * `pull`, with a resolver made from the source's RegistryResolver); every other pair is refused with Unimplemented
 * naming both type URLs, as containerd answers a pair no transferrer takes.
 */
export class TransferService implements RpcServices {
  readonly services: readonly RpcServiceImplementation[];
  private readonly meter: ReturnType<typeof meterOf>;

  constructor(private readonly deps: TransferDeps) {
    this.services = [implementService(ServiceNames.Transfer, { Transfer: (req, ctx) => this.transfer(req, ctx) })];
    this.meter = meterOf(deps.metrics ?? new MetricsRegistry());
  }

  private async transfer(req: Transfer, ctx: RpcContext): Promise<void> {
    const op = opContextOf(ctx);
    const source = requireAny(req.source, 'source');
    const destination = requireAny(req.destination, 'destination');
    const pair = `${source.type_url} to ${destination.type_url}`;
    if (typeNameOfUrl(source.type_url) !== OCI_REGISTRY || typeNameOfUrl(destination.type_url) !== IMAGE_STORE) {
      throw new NotImplementedError(`method Transfer not implemented for ${pair}`);
    }
    const registry = decode(OCI_REGISTRY, source);
    const store = decode(IMAGE_STORE, destination);
    if (!registry.reference) throw new InvalidArgumentError('OCIRegistry reference is required');
    parseRemoteRef(registry.reference);
    // Streams named by the request must exist before anything starts (containerd: NotFound).
    const progressStream = req.options?.progress_stream ? this.deps.streams.get(op.namespace, req.options.progress_stream) : undefined;
    const authId = registry.resolver?.auth_stream;
    const authStream = authId ? this.deps.streams.get(op.namespace, authId) : undefined;
    const progress = progressStream ? new ProgressSender(progressStream, this.deps.log) : undefined;
    let resolver: (Resolver & { close?(): void }) | undefined;
    const track = pullTracker(this.meter);
    const started = performance.now();
    let result: 'ok' | 'error' = 'error';
    try {
      resolver = this.deps.createResolver(resolverOptionsOf(registry, authStream, ctx.signal));
      const options = pullOptionsOf(registry.reference, store, resolver);
      progress?.status(`Pulling from ${registry.reference}`);
      const pulled = await this.deps.pull(this.deps.services, op, {
        ...options,
        onProgress: (event) => {
          track(event);
          progress?.blob(event);
        },
        signal: ctx.signal,
      });
      result = 'ok';
      progress?.status('saved', pulled.image.name);
      progress?.status(`Completed pull from ${registry.reference}`);
    } finally {
      this.meter.pulls.inc({ result });
      this.meter.seconds.observe((performance.now() - started) / 1000);
      resolver?.close?.();
      await progress?.flush();
      close(progressStream);
    }
  }
}

function close(stream: Stream | undefined): void {
  stream?.close();
}

function requireAny(any: google.protobuf.Any | null, what: string): google.protobuf.Any {
  if (!any?.type_url) throw new InvalidArgumentError(`transfer ${what} is required`);
  return any;
}

function decode<N extends typeof OCI_REGISTRY | typeof IMAGE_STORE>(name: N, any: google.protobuf.Any) {
  try {
    return messageCodec(name).decode(any.value);
  } catch (err) {
    throw new InvalidArgumentError(`${name}: ${(err as Error).message}`, { cause: err });
  }
}

function platformOf(p: containerd.types.Platform): Platform {
  if (!p.os || !p.architecture) throw new InvalidArgumentError(`platform ${JSON.stringify(p)}: os and architecture are required`);
  return {
    os: p.os,
    architecture: p.architecture,
    ...(p.variant ? { variant: p.variant } : {}),
    ...(p.os_version ? { osVersion: p.os_version } : {}),
  };
}

/**
 * The ImageStore destination as pull options. `platforms` empty = every platform (containerd's platforms.All);
 * `unpacks` = unpack, into one snapshotter (empty: the default), the platforms they name; an unpack without a
 * platform stands for the fetched ones when `platforms` names some, else for the host's (not every platform of an
 * index: a host runs only its own). Not taken: another image name than the
 * reference, extra references, a manifest limit (refused when set); `all_metadata` changes nothing (the pull
 * fetches the manifests of the chosen platforms).
 */
export function pullOptionsOf(reference: string, store: containerd.types.transfer.ImageStore, resolver: Resolver): PullOptions {
  if (store.name && store.name !== reference) {
    throw new NotImplementedError(`storing a pull of ${reference} under another name (${store.name})`);
  }
  if (store.extra_references.length > 0) throw new NotImplementedError('ImageStore extra_references');
  if (store.manifest_limit > 0) throw new NotImplementedError('ImageStore manifest_limit');
  const snapshotters = [...new Set(store.unpacks.map((u) => u.snapshotter))];
  if (snapshotters.length > 1) throw new NotImplementedError(`unpacking into several snapshotters (${snapshotters.join(', ')})`);
  const fetch = store.platforms.map(platformOf);
  const platforms = fetch.length > 0 ? fetch : 'all';
  const unpackPlatforms = store.unpacks.flatMap((u) => (u.platform ? [platformOf(u.platform)] : fetch.length > 0 ? fetch : [defaultPlatform()]));
  return {
    ref: reference,
    resolver,
    platforms,
    unpack: store.unpacks.length > 0,
    ...(store.unpacks.length > 0 ? { unpackPlatforms } : {}),
    ...(snapshotters[0] ? { snapshotter: snapshotters[0] } : {}),
    ...(Object.keys(store.labels).length > 0 ? { labels: store.labels } : {}),
  };
}
