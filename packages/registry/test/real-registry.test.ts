// The client against the real thing: Debian's docker-registry on loopback (the daemon's test harness starts and
// stops it). Resolve and fetch what the harness pushed; push an image to a second repository with the Pusher
// (mounting blobs across repositories, uploading the rest monolithic and chunked) and fetch it back.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256Digest } from '@berth/core';
import { hasRegistry, MEDIA_TYPE_OCI_CONFIG, MEDIA_TYPE_OCI_LAYER, MEDIA_TYPE_OCI_MANIFEST, startRegistry, type Registry } from '../../daemon/test/registry.js';
import { createResolver, type HttpResolver } from '../src/resolver.js';
import { collectBytes } from '../src/testing/fake-registry.js';

describe.skipIf(!hasRegistry())('against docker-registry', () => {
  let registry: Registry | undefined;
  let resolver: HttpResolver | undefined;
  const layer = randomBytes(3 * 1024 * 1024 + 17);
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [sha256Digest(layer)] } }));
  let manifest: Buffer;
  let manifestDigest: string;

  beforeAll(async () => {
    registry = await startRegistry();
    const l = await registry.pushBlob('test/src', layer);
    const c = await registry.pushBlob('test/src', config);
    manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MEDIA_TYPE_OCI_MANIFEST,
        config: { mediaType: MEDIA_TYPE_OCI_CONFIG, digest: c.digest, size: c.size },
        layers: [{ mediaType: MEDIA_TYPE_OCI_LAYER, digest: l.digest, size: l.size }],
      }),
    );
    manifestDigest = await registry.pushManifest('test/src', 'v1', manifest, MEDIA_TYPE_OCI_MANIFEST);
    // small upload chunks so that the layer goes up in several PATCHes
    resolver = createResolver({ credentials: async () => undefined, monolithicLimit: 1 << 20, chunkSize: 1 << 20 });
  });
  afterAll(async () => {
    resolver?.close();
    await registry?.stop();
  });
  const r = () => registry as Registry;
  const res = () => resolver as HttpResolver;

  it('resolves a tag and fetches the manifest and its blobs, resuming one from an offset', async () => {
    const resolved = await res().resolve(`${r().host}/test/src:v1`);
    expect(resolved.descriptor).toEqual({ mediaType: MEDIA_TYPE_OCI_MANIFEST, digest: manifestDigest, size: manifest.length });
    const fetcher = res().fetcher(resolved.name);
    const got = await collectBytes((await fetcher.fetch(resolved.descriptor)).chunks);
    expect(got.equals(manifest)).toBe(true);
    const parsed = JSON.parse(got.toString()) as { layers: { mediaType: string; digest: string; size: number }[] };
    const tail = await fetcher.fetch(parsed.layers[0]!, { offset: 1_000_000 });
    expect(tail.offset).toBe(1_000_000);
    expect((await collectBytes(tail.chunks)).equals(layer.subarray(1_000_000))).toBe(true);
    // by digest as well
    expect((await res().resolve(`${r().host}/test/src@${manifestDigest}`)).descriptor.digest).toBe(manifestDigest);
  });

  it('pushes the image to another repository (config uploaded, layer mounted), then to a third (chunked), and fetches it back', async () => {
    const src = JSON.parse(manifest.toString()) as { config: { mediaType: string; digest: string; size: number }; layers: { mediaType: string; digest: string; size: number }[] };
    const fromSource = (data: Buffer) => () => (async function* () { yield data; })();
    const copy = res().pusher(`${r().host}/test/copy:v2`);
    expect(await copy.exists(src.layers[0]!)).toBe(false);
    expect(await copy.push(src.layers[0]!, fromSource(layer), { mountFrom: ['test/src'] })).toBe('mounted');
    expect(await copy.push(src.config, fromSource(config))).toBe('uploaded');
    expect(await copy.push(src.config, fromSource(config))).toBe('exists');
    const mdesc = { mediaType: MEDIA_TYPE_OCI_MANIFEST, digest: manifestDigest, size: manifest.length };
    expect(await copy.push(mdesc, fromSource(manifest))).toBe('uploaded');
    expect(await copy.exists(mdesc)).toBe(true);

    const third = res().pusher(`${r().host}/test/third:v3`);
    const sent: number[] = [];
    // in 100 KiB pieces: the pusher re-cuts them into its 1 MiB chunks
    const pieces = () => (async function* () { for (let i = 0; i < layer.length; i += 100 * 1024) yield layer.subarray(i, i + 100 * 1024); })();
    expect(await third.push(src.layers[0]!, pieces, { onProgress: (n) => sent.push(n) })).toBe('uploaded');
    expect(sent.at(-1)).toBe(layer.length);
    expect(sent.length).toBe(4);
    expect(await third.push(src.config, fromSource(config))).toBe('uploaded');
    expect(await third.push(mdesc, fromSource(manifest))).toBe('uploaded');

    for (const repo of ['test/copy:v2', 'test/third:v3']) {
      const back = await res().resolve(`${r().host}/${repo}`);
      expect(back.descriptor.digest).toBe(manifestDigest);
      const fetcher = res().fetcher(back.name);
      expect(sha256Digest(await collectBytes((await fetcher.fetch(src.layers[0]!)).chunks))).toBe(src.layers[0]!.digest);
      expect(sha256Digest(await collectBytes((await fetcher.fetch(src.config)).chunks))).toBe(src.config.digest);
    }
  });
});
