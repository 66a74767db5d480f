// pull against the real parts: Debian's docker-registry on loopback (the daemon's test harness starts it), the HTTP
// Resolver of @berth/registry, the project's test images (tools/images), and the real content, metadata, snapshotter
// and differ plugins. What it unpacks is compared with `umoci unpack` of the same image, and what it writes (labels
// on every blob, snapshots) with what Debian's `ctr images pull` writes into berthd.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { applierToken, contentStoreToken, imagesToken, leasesToken, snapshottersToken, type OpContext } from '@berth/core';
import { createTestHost, type TestHost } from '@berth/core/testing';
import contentLocalPlugin from '@berth/plugin-content-local';
import differWalkingPlugin from '@berth/plugin-differ-walking';
import metadataLmdbPlugin from '@berth/plugin-metadata-lmdb';
import nativeSnapshotterPlugin from '@berth/plugin-snapshotter-native';
import { createResolver, type HttpResolver } from '@berth/registry';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildImage, compareTrees, formatDifferences, hasUmoci, umociUnpack, type BuiltImage } from '../../../tools/images/index.mjs';
import { CTR, hasCtr, hasRoot, NO_GC, run, startBerthd, type Berthd } from '../../daemon/test/harness.js';
import { hasRegistry, pushLayout, startRegistry, type Registry } from '../../daemon/test/registry.js';
import { chainIds } from '../src/identity.js';
import { pull } from '../src/pull.js';
import type { ImageServices } from '../src/types.js';

const ctx: OpContext = { namespace: 'default' };

describe.skipIf(!hasRegistry() || !hasRoot())('pull from docker-registry on loopback', () => {
  let scratch: string;
  let registry: Registry;
  let resolver: HttpResolver;
  let t: TestHost;
  let services: ImageServices;
  let layers: BuiltImage;
  let layersRef: string;

  beforeAll(async () => {
    scratch = await mkdtemp(join(tmpdir(), 'berth-images-pull-'));
    registry = await startRegistry();
    layers = await buildImage('layers', join(scratch, 'layers'));
    layersRef = (await pushLayout(registry, layers.dir, 'test/layers:latest')).reference;
    resolver = createResolver({ credentials: async () => undefined });
    t = await createTestHost({ plugins: [contentLocalPlugin, metadataLmdbPlugin, nativeSnapshotterPlugin, differWalkingPlugin] });
    services = {
      content: t.host.get(contentStoreToken),
      images: t.host.get(imagesToken),
      leases: t.host.get(leasesToken),
      snapshotters: t.host.get(snapshottersToken),
      applier: t.host.get(applierToken),
    };
  }, 120_000);
  afterAll(async () => {
    resolver?.close();
    await t?.close();
    await registry?.stop();
    if (scratch) await rm(scratch, { recursive: true, force: true });
  });

  /** The top snapshot's tree, through a view (the native snapshotter's bind mount source). */
  async function withTree<T>(chainId: string, body: (dir: string) => Promise<T>): Promise<T> {
    const sn = services.snapshotters.get('native');
    const key = `view-${chainId.slice(7, 19)}-${Date.now()}`;
    const mounts = await sn.view(ctx, key, chainId);
    try {
      return await body(mounts[0]!.source);
    } finally {
      await sn.remove(ctx, key);
    }
  }

  it.skipIf(!hasUmoci())('unpacks the layers image (whiteouts, opaque dirs, owners, xattrs) to the tree umoci unpack makes', async () => {
    const result = await pull(services, ctx, { ref: layersRef, resolver, snapshotter: 'native' });
    const manifest = layers.manifests[0]!;
    expect(result.unpacked.map((u) => u.chainId)).toEqual([chainIds(manifest.layers.map((l) => l.diffId)).at(-1)]);
    const rootfs = umociUnpack(layers.dir, 'latest', join(scratch, 'umoci-layers'));
    const differences = await withTree(result.unpacked[0]!.chainId, (dir) => compareTrees(rootfs, dir));
    expect(formatDifferences(differences, { a: 'umoci', b: 'berth' })).toBe('');
    const image = await services.images.get(ctx, layersRef);
    expect(image.target.digest).toBe(layers.target.digest);
  });

  describe.skipIf(!hasCtr())('against ctr images pull into berthd', () => {
    let berthd: Berthd | undefined;
    afterAll(async () => {
      await berthd?.stop();
    });

    /** `ctr content ls`: digest -> labels. */
    async function ctrContent(): Promise<Map<string, Record<string, string>>> {
      const r = await run(CTR, ['--address', berthd!.address, 'content', 'ls']);
      expect(r.code, r.stderr).toBe(0);
      const out = new Map<string, Record<string, string>>();
      for (const line of r.stdout.trim().split('\n').slice(1)) {
        const fields = line.trim().split(/\s+/);
        const labels: Record<string, string> = {};
        const last = fields.at(-1)!;
        if (last !== '-' && last.includes('=')) {
          for (const pair of last.split(',')) {
            const eq = pair.indexOf('=');
            labels[pair.slice(0, eq)] = pair.slice(eq + 1);
          }
        }
        out.set(fields[0]!, labels);
      }
      return out;
    }

    async function ctrSnapshot(key: string): Promise<{ Name: string; Parent?: string; Kind: string; Labels?: Record<string, string> }> {
      const r = await run(CTR, ['--address', berthd!.address, 'snapshots', '--snapshotter', 'native', 'info', key]);
      expect(r.code, r.stderr).toBe(0);
      return JSON.parse(r.stdout) as { Name: string; Parent?: string; Kind: string; Labels?: Record<string, string> };
    }

    it('writes the same labels on every blob and the same snapshots as ctr images pull does', async () => {
      berthd = await startBerthd({ config: NO_GC });
      const r = await run(CTR, ['--address', berthd.address, 'images', 'pull', '--plain-http', '--snapshotter', 'native', layersRef], { timeoutMs: 120_000 });
      expect(r.code, r.stderr + berthd.logs.slice(-2000)).toBe(0);
      const theirs = await ctrContent();

      await pull(services, ctx, { ref: layersRef, resolver, snapshotter: 'native' });
      expect(theirs.size).toBeGreaterThan(0);
      for (const [digest, labels] of theirs) {
        const ours = (await services.content.info(ctx, digest)).labels;
        expect({ digest, labels: ours }).toEqual({ digest, labels });
      }
      const chain = chainIds(layers.manifests[0]!.layers.map((l) => l.diffId));
      const sn = services.snapshotters.get('native');
      for (const [i, id] of chain.entries()) {
        const their = await ctrSnapshot(id);
        const our = await sn.stat(ctx, id);
        // ctr 1.6 unpacks through rootfs.ApplyLayers, without labels; berth unpacks as containerd's client.Pull
        // unpacker does (what nerdctl and the CRI plugin use), which labels the chain with containerd.io/snapshot.ref
        expect({ name: our.name, parent: our.parent, kind: our.kind, labels: our.labels }).toEqual({
          name: their.Name,
          parent: their.Parent ?? '',
          kind: their.Kind.toLowerCase(),
          labels: { ...their.Labels, 'containerd.io/snapshot.ref': id },
        });
        expect(our.parent).toBe(i > 0 ? chain[i - 1] : '');
      }
    }, 180_000);
  });
});
