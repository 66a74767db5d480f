// The walking differ (containerd's diff/walking + diff/apply): Apply streams a layer from the content store into a
// worker that decompresses, verifies and unpacks it; Compare walks two trees in a worker and writes the layer it
// produces to the content store. The main thread only moves bytes between the store and the workers.
import { randomBytes } from 'node:crypto';
import {
  CancelledError,
  errorFromErrdef,
  fromSystemError,
  InvalidArgumentError,
  isAlreadyExists,
  NotImplementedError,
  validateDigest,
  type CompareOptions,
  type ContentIngester,
  type ContentManager,
  type ContentProvider,
  type ContentReader,
  type Descriptor,
  type Differ,
  type IngestManager,
  type Logger,
  type Mount,
  type OpContext,
} from '@berth/core';
import type { MessagePort } from 'node:worker_threads';
import type { DevicePolicy } from './apply/layer-writer.js';
import type { Decompressors } from './decompressors.js';
import { compressionOf, MediaType } from './media-types.js';
import { checkDirectory, planApply, withReadTree, withTempMount } from './mounts.js';
import type { ApplyResult, CompareResult, FromWorker, SerializedError } from './worker/protocol.js';
import type { WorkerPool } from './worker/pool.js';

/** The label containerd puts on a compressed layer: the digest of its uncompressed tar (the diff ID). */
export const UNCOMPRESSED_LABEL = 'containerd.io/uncompressed';

/** Chunks (1 MiB from the content store) a worker may have unacknowledged. */
const WINDOW = 4;

export interface WalkingDifferOptions {
  /** The namespaced content roles: layers are read from it, diffs written to it. */
  readonly content: {
    readonly provider: ContentProvider;
    readonly ingester: ContentIngester;
    readonly manager: ContentManager;
    readonly ingests: IngestManager;
  };
  readonly pool: WorkerPool;
  readonly decompressors: Decompressors;
  /** Where temporary mounts go (containerd's tmpmounts). */
  readonly tmpRoot: string;
  readonly devices: DevicePolicy;
  readonly compressionLevel: number;
  readonly log: Logger;
}

export class WalkingDiffer implements Differ {
  constructor(private readonly o: WalkingDifferOptions) {}

  async apply(ctx: OpContext, desc: Descriptor, mounts: readonly Mount[]): Promise<Descriptor> {
    const started = performance.now();
    const compression = compressionOf(desc.mediaType);
    if (!compression) {
      throw new NotImplementedError(`failed to get stream processor for ${desc.mediaType}: no processor for media-type`);
    }
    validateDigest(desc.digest, 'layer digest');
    if (!Number.isSafeInteger(desc.size) || desc.size < 0) throw new InvalidArgumentError(`layer size ${desc.size} is invalid`);
    const plan = planApply(mounts);
    const reader = await this.o.content.provider.reader(ctx, desc.digest);
    try {
      if (desc.size > 0 && reader.size !== desc.size) {
        throw new InvalidArgumentError(`layer ${desc.digest} has ${reader.size} bytes in the content store, the descriptor says ${desc.size}`);
      }
      const run = async (root: string, whiteouts: 'overlay' | 'delete', lowers: readonly string[]) => {
        const running = await this.o.pool.start(
          {
            kind: 'apply',
            target: { root, whiteouts, lowers, devices: this.o.devices },
            compression,
            gzip: this.o.decompressors.gzip,
            zstd: this.o.decompressors.zstd,
            digest: desc.digest,
            size: reader.size,
          },
          ctx.signal,
        );
        return (await pump(running.port, running.crashed, reader, ctx.signal)) as ApplyResult;
      };
      let result: ApplyResult;
      if (plan.kind === 'direct') {
        await checkDirectory(plan.root, plan.whiteouts === 'overlay' ? 'overlay upperdir' : 'bind mount source');
        result = await run(plan.root, plan.whiteouts, plan.lowers);
      } else {
        result = await withTempMount(this.o.tmpRoot, plan.mounts, (root) => run(root, 'delete', []));
      }
      const s = result.stats;
      if (s.droppedXattrs > 0 || s.skippedDevices > 0) {
        this.o.log.warn('layer applied with entries left out', { digest: desc.digest, trustedXattrs: s.droppedXattrs, devices: s.skippedDevices });
      }
      this.o.log.debug('diff applied', {
        d: `${Math.round(performance.now() - started)}ms`,
        digest: desc.digest,
        size: desc.size,
        media: desc.mediaType,
        entries: s.entries,
        decompressor: result.decompressor,
        into: plan.kind === 'direct' ? plan.whiteouts : 'mount',
      });
      return { mediaType: MediaType.OciLayer, digest: result.digest, size: result.size };
    } finally {
      await reader.close();
    }
  }

  async compare(ctx: OpContext, lower: readonly Mount[], upper: readonly Mount[], options: CompareOptions = {}): Promise<Descriptor> {
    const mediaType = options.mediaType || MediaType.OciLayerGzip;
    if (mediaType !== MediaType.OciLayer && mediaType !== MediaType.OciLayerGzip) {
      throw new NotImplementedError(`unsupported diff media type: ${mediaType}`);
    }
    const gzip = mediaType === MediaType.OciLayerGzip;
    const whiteoutTime = Math.floor(Date.now() / 1000);
    return withReadTree(this.o.tmpRoot, lower, (lowerRoot) =>
      withReadTree(this.o.tmpRoot, upper, async (upperRoot) => {
        const { ingester, manager, ingests } = this.o.content;
        const newReference = !options.ref;
        const ref = options.ref || uniqueRef();
        const writer = await ingester.writer(ctx, { ref });
        let committed = false;
        try {
          if (!newReference && (await writer.status()).offset > 0) await writer.truncate(0);
          const running = await this.o.pool.start(
            { kind: 'compare', lower: lowerRoot, upper: upperRoot, gzipLevel: gzip ? this.o.compressionLevel : undefined, whiteoutTime },
            ctx.signal,
          );
          const result = (await receive(running.port, running.crashed, (chunk) => writer.write(chunk), ctx.signal)) as CompareResult;
          const labels = { ...options.labels, ...(gzip ? { [UNCOMPRESSED_LABEL]: result.tarDigest } : {}) };
          const digest = writer.digest();
          try {
            await writer.commit(0, digest, { labels });
          } catch (err) {
            if (!isAlreadyExists(err)) throw err;
          }
          committed = true;
          let info = await manager.info(ctx, digest);
          // The blob was there already (the same diff made before): the labels asked for go onto it too. containerd
          // sets only the uncompressed label there, so a repeated diff's labels (`ctr snapshots diff --keep`'s
          // gc.root among them) are lost and the layer may be collected under its caller.
          const missing = Object.entries(labels).filter(([k, v]) => info.labels[k] !== v);
          if (missing.length > 0) {
            info = await manager.update(ctx, { digest, labels: Object.fromEntries(missing) }, missing.map(([k]) => `labels.${k}`));
          }
          this.o.log.debug('diff written', { digest, size: info.size, entries: result.entries, tar: result.tarDigest });
          return { mediaType, digest: info.digest, size: info.size };
        } finally {
          await writer.close().catch(() => undefined);
          if (!committed && newReference) await ingests.abort(ctx, ref).catch(() => undefined);
        }
      }),
    );
  }
}

/** containerd's uniqueRef for a diff upload: `<unix nanos>-<3 random bytes, base64url>`. */
export function uniqueRef(): string {
  const nanos = BigInt(Date.now()) * 1_000_000n + (process.hrtime.bigint() % 1_000_000n);
  return `${nanos}-${randomBytes(3).toString('base64url')}`;
}

/** The worker's error as an errdef of core (a system error worded as containerd words it). */
export function deserializeError(e: SerializedError): Error {
  if (e.system) {
    const err = Object.assign(new Error(e.message), e.system);
    return fromSystemError(err) as Error;
  }
  if (e.errdef === 'cancelled') return new CancelledError(e.message);
  return errorFromErrdef(e.errdef ?? 'unknown', e.message);
}

/** A buffer the main thread may give away: one that owns all of its ArrayBuffer (else a copy). */
function transferable(chunk: Buffer): Uint8Array {
  if (chunk.byteOffset === 0 && chunk.byteLength === chunk.buffer.byteLength && chunk.buffer instanceof ArrayBuffer) return chunk;
  return new Uint8Array(chunk);
}

/** Streams the blob to a worker's apply job, a window of chunks at a time, and waits for its result. */
async function pump(port: MessagePort, crashed: Promise<never>, reader: ContentReader, signal: AbortSignal | undefined): Promise<unknown> {
  let inflight = 0;
  let wake: (() => void) | undefined;
  let settled = false;
  const result = new Promise<unknown>((resolve, reject) => {
    port.on('message', (m: FromWorker) => {
      if ('ack' in m) {
        inflight--;
        wake?.();
      } else if ('done' in m) {
        settled = true;
        resolve(m.done);
      } else if ('error' in m) {
        settled = true;
        reject(deserializeError(m.error));
      }
      if (settled) wake?.();
    });
  });
  result.catch(() => undefined);
  const onAbort = () => port.postMessage({ cancel: true });
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    if (signal?.aborted) onAbort();
    const feed = async () => {
      for await (const chunk of reader.stream()) {
        while (inflight >= WINDOW && !settled) await new Promise<void>((r) => (wake = r));
        if (settled || signal?.aborted) return;
        const data = transferable(chunk);
        port.postMessage({ data }, [data.buffer as ArrayBuffer]);
        inflight++;
      }
      port.postMessage({ end: true });
    };
    await Promise.race([feed(), crashed, result]);
    return await Promise.race([result, crashed]);
  } finally {
    signal?.removeEventListener('abort', onAbort);
    port.close();
  }
}

/** Receives a compare job's output, handing each chunk to `write` before acknowledging it. */
async function receive(
  port: MessagePort,
  crashed: Promise<never>,
  write: (chunk: Uint8Array) => Promise<void>,
  signal: AbortSignal | undefined,
): Promise<unknown> {
  const onAbort = () => port.postMessage({ cancel: true });
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    if (signal?.aborted) onAbort();
    const result = new Promise<unknown>((resolve, reject) => {
      let writing = Promise.resolve();
      port.on('message', (m: FromWorker) => {
        if ('data' in m) {
          writing = writing.then(async () => {
            await write(m.data);
            port.postMessage({ ack: 1 });
          });
          writing.catch((err: unknown) => {
            port.postMessage({ cancel: true });
            reject(err);
          });
        } else if ('done' in m) {
          writing.then(() => resolve(m.done), reject);
        } else if ('error' in m) {
          reject(deserializeError(m.error));
        }
      });
    });
    return await Promise.race([result, crashed]);
  } finally {
    signal?.removeEventListener('abort', onAbort);
    port.close();
  }
}
