// Docker schema 1 manifests, converted on pull as containerd's remotes/docker/schema1 converter does: the
// non-empty layers (fsLayers run newest first) are fetched with unknown sizes, their diff IDs computed by
// decompressing them, and an OCI manifest and config are written (config from the newest history entry, its
// rootfs and history rebuilt), the manifest labelled gc.ref.content.0 (config) and .1… (layers).
import { createGunzip } from 'node:zlib';
import { Readable } from 'node:stream';
import {
  DataLossError,
  InvalidArgumentError,
  newDigester,
  readBlob,
  sha256Digest,
  writeBlob,
  type Descriptor,
} from '@berth/core';
import { refKeyFor } from '@berth/registry';
import { MAX_DOCUMENT_SIZE, parseImageConfig, type ImageConfig } from './manifests.js';
import { MediaType } from './media-types.js';
import { normalizePlatform } from './platforms.js';
import type { Platform } from './types.js';
import type { LayerSource } from './unpack.js';

export const SCHEMA1_EMPTY_LAYER_LABEL = 'containerd.io/docker.schema1.empty-layer';

/** The parts of the fetcher and store a conversion uses (the pull's run). */
export interface Schema1Host {
  readonly ctx: import('@berth/core').OpContext;
  readonly services: import('./types.js').ImageServices;
  readonly fetcher: import('@berth/registry').Fetcher;
  fetch(desc: Descriptor): Promise<void>;
  setLabels(digest: string, labels: Record<string, string>): Promise<void>;
}

interface V1History {
  author?: string;
  created?: string;
  comment?: string;
  throwaway?: boolean;
  Size?: number;
  container_config?: { Cmd?: string[] };
}

function isEmptyLayer(h: V1History): boolean {
  if (typeof h.throwaway === 'boolean') return h.throwaway;
  if (typeof h.Size === 'number') return h.Size === 0;
  // containerd: without either field, a layer is empty only when it is the well-known empty tar
  return false;
}

async function readAll(chunks: AsyncIterable<Uint8Array>, limit: number, what: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  let size = 0;
  for await (const c of chunks) {
    size += c.length;
    if (size > limit) throw new InvalidArgumentError(`${what}: more than ${limit} bytes`);
    parts.push(Buffer.from(c));
  }
  return Buffer.concat(parts);
}

/** The diff ID of a stored layer, and whether it was compressed (gzip) or plain. */
async function diffIdOf(host: Schema1Host, digest: string): Promise<{ diffId: string; compressed: boolean }> {
  const head = Buffer.alloc(0);
  const source = Readable.from(readBlob(host.services.content, host.ctx, digest));
  const hash = newDigester();
  let compressed: boolean | undefined;
  let first: Buffer = head;
  const gunzip = createGunzip();
  const done = new Promise<void>((resolve, reject) => {
    gunzip.on('data', (c: Buffer) => hash.update(c));
    gunzip.on('end', resolve);
    gunzip.on('error', reject);
  });
  for await (const chunk of source as AsyncIterable<Buffer>) {
    if (compressed === undefined) {
      first = Buffer.concat([first, chunk]);
      if (first.length < 2) continue;
      compressed = first[0] === 0x1f && first[1] === 0x8b;
      if (compressed) gunzip.write(first);
      else hash.update(first);
      continue;
    }
    if (compressed) {
      if (!gunzip.write(chunk)) await new Promise((r) => gunzip.once('drain', r));
    } else hash.update(chunk);
  }
  if (compressed === undefined) hash.update(first);
  if (compressed) {
    gunzip.end();
    await done;
  } else gunzip.destroy();
  return { diffId: `sha256:${hash.digest('hex')}`, compressed: compressed === true };
}

async function* once(bytes: Uint8Array): AsyncGenerator<Uint8Array> {
  yield bytes;
}

/** Go's json.MarshalIndent(v, "", "   ") for plain JSON values (Go escapes <, > and & in strings). */
function goJson(value: unknown): Buffer {
  const text = JSON.stringify(value, null, 3).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  return Buffer.from(text);
}

/** Converts the schema 1 manifest `desc` (fetching its layers), returning the OCI manifest written and what to unpack. */
export async function convertSchema1(
  host: Schema1Host,
  desc: Descriptor,
): Promise<{ manifest: Descriptor; chosen: { manifest: Descriptor; platform: Platform; config: Descriptor; imageConfig: ImageConfig; layers: LayerSource[] } }> {
  const body = await host.fetcher.fetch(desc, host.ctx.signal ? { signal: host.ctx.signal } : undefined);
  const bytes = await readAll(body.chunks, MAX_DOCUMENT_SIZE, `schema 1 manifest ${desc.digest}`);
  let doc: { fsLayers?: { blobSum?: string }[]; history?: { v1Compatibility?: string }[]; layers?: unknown; manifests?: unknown };
  try {
    doc = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new DataLossError(`schema 1 manifest ${desc.digest}: not valid JSON`, { cause: err });
  }
  if (doc.manifests !== undefined || doc.layers !== undefined) throw new InvalidArgumentError('converter: expected schema1 document but found extra keys');
  const fsLayers = doc.fsLayers ?? [];
  const history = doc.history ?? [];
  if (fsLayers.length !== history.length) throw new InvalidArgumentError('invalid schema 1 manifest, history and layer mismatch');
  if (history.length === 0) throw new InvalidArgumentError('schema 1 conversion failed: no history');
  const parsed = history.map((h, i) => {
    try {
      return JSON.parse(h.v1Compatibility ?? '') as V1History & Record<string, unknown>;
    } catch (err) {
      throw new InvalidArgumentError(`schema 1 manifest ${desc.digest}: history ${i} is not valid JSON`, { cause: err });
    }
  });
  // Unique non-empty blobs, oldest first (fsLayers list the newest first).
  const empty = new Map<string, boolean>();
  const blobs: string[] = [];
  fsLayers.forEach((l, i) => {
    const sum = l.blobSum ?? '';
    if (empty.has(sum)) return;
    const e = isEmptyLayer(parsed[i]!);
    empty.set(sum, e);
    if (!e) blobs.unshift(sum);
  });
  const states = new Map<string, { diffId: string; layer: Descriptor }>();
  await Promise.all(
    blobs.map(async (digest) => {
      const layer: Descriptor = { mediaType: MediaType.DockerLayerGzip, digest, size: 0 };
      await host.fetch(layer);
      const info = await host.services.content.info(host.ctx, digest);
      const { diffId, compressed } = await diffIdOf(host, digest);
      await host.setLabels(digest, { 'containerd.io/uncompressed': diffId, [SCHEMA1_EMPTY_LAYER_LABEL]: 'false' });
      states.set(digest, { diffId, layer: { mediaType: compressed ? MediaType.DockerLayerGzip : MediaType.DockerLayer, digest, size: info.size } });
    }),
  );
  const diffIds: string[] = [];
  const layers: Descriptor[] = [];
  const ociHistory = new Array<Record<string, unknown>>(parsed.length);
  parsed.forEach((h, i) => {
    const sum = fsLayers[i]!.blobSum ?? '';
    const isEmpty = empty.get(sum) === true;
    ociHistory[parsed.length - i - 1] = {
      ...(h.created ? { created: h.created } : {}),
      ...(h.container_config?.Cmd?.length ? { created_by: h.container_config.Cmd.join(' ') } : {}),
      ...(h.author ? { author: h.author } : {}),
      ...(h.comment ? { comment: h.comment } : {}),
      ...(isEmpty ? { empty_layer: true } : {}),
    };
    if (!isEmpty) {
      const s = states.get(sum)!;
      diffIds.unshift(s.diffId);
      layers.unshift(s.layer);
    }
  });
  const top = parsed[0]!;
  const config = {
    ...(typeof top.created === 'string' ? { created: top.created } : {}),
    ...(typeof top.author === 'string' && top.author !== '' ? { author: top.author } : {}),
    architecture: typeof top.architecture === 'string' ? top.architecture : '',
    ...(typeof top.variant === 'string' && top.variant !== '' ? { variant: top.variant } : {}),
    os: typeof top.os === 'string' ? top.os : '',
    config: imageConfigOf(top.config),
    rootfs: { type: 'layers', diff_ids: diffIds },
    history: ociHistory,
  };
  const configBytes = goJson(config);
  const configDesc: Descriptor = { mediaType: MediaType.OciConfig, digest: sha256Digest(configBytes), size: configBytes.length };
  const manifest = { schemaVersion: 2, config: configDesc, layers: layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })) };
  const manifestBytes = goJson(manifest);
  const manifestDesc: Descriptor = { mediaType: MediaType.OciManifest, digest: sha256Digest(manifestBytes), size: manifestBytes.length };
  const labels: Record<string, string> = { 'containerd.io/gc.ref.content.0': configDesc.digest };
  layers.forEach((l, i) => (labels[`containerd.io/gc.ref.content.${i + 1}`] = l.digest));
  await writeBlob(host.services.content, host.ctx, once(manifestBytes), { ref: refKeyFor(manifestDesc.digest, manifestDesc.mediaType), total: manifestBytes.length, expected: manifestDesc.digest, labels });
  await writeBlob(host.services.content, host.ctx, once(configBytes), { ref: refKeyFor(configDesc.digest, configDesc.mediaType), total: configBytes.length, expected: configDesc.digest });
  const imageConfig = parseImageConfig(configBytes, configDesc);
  const platform = normalizePlatform({ os: imageConfig.os || 'linux', architecture: imageConfig.architecture, ...(imageConfig.variant ? { variant: imageConfig.variant } : {}) });
  return {
    manifest: manifestDesc,
    chosen: { manifest: manifestDesc, platform, config: configDesc, imageConfig, layers: layers.map((l) => ({ descriptor: l, fetched: Promise.resolve() })) },
  };
}

/** The OCI ImageConfig fields of a v1 config (Go unmarshals them case-insensitively), in Go's field order. */
function imageConfigOf(v: unknown): Record<string, unknown> {
  if (typeof v !== 'object' || v === null) return {};
  const src = v as Record<string, unknown>;
  const get = (name: string) => {
    const key = Object.keys(src).find((k) => k.toLowerCase() === name.toLowerCase());
    return key === undefined ? undefined : src[key];
  };
  const out: Record<string, unknown> = {};
  const nonEmpty = (x: unknown) => x !== undefined && x !== null && x !== '' && x !== false && !(Array.isArray(x) && x.length === 0) && !(typeof x === 'object' && !Array.isArray(x) && Object.keys(x as object).length === 0);
  for (const name of ['User', 'ExposedPorts', 'Env', 'Entrypoint', 'Cmd', 'Volumes', 'WorkingDir', 'Labels', 'StopSignal', 'ArgsEscaped']) {
    const x = get(name);
    if (nonEmpty(x)) out[name] = x;
  }
  return out;
}
