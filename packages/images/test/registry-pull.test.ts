// pull against the real parts: Debian's docker-registry on loopback (the daemon's test harness starts it), the HTTP
// Resolver of @berth/registry, the project's test images (tools/images), and the real content, metadata, snapshotter
// and differ plugins. What it unpacks is compared with `umoci unpack` of the same image, and what it writes (labels
// on every blob, snapshots) with what Debian's `ctr images pull` writes into berthd.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { OpContext } from '@berth/core';
import type { TestHost } from '@berth/core/testing';
import { createResolver, type HttpResolver } from '@berth/registry';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildImage, compareTrees, formatDifferences, hasUmoci, signSchema1, umociUnpack, type BuiltImage } from '../../../tools/images/index.mjs';
import { CTR, hasCtr, hasRoot, NO_GC, run, startBerthd, type Berthd } from '../../daemon/test/harness.js';
import { hasRegistry, pushLayout, pushSchema1, startRegistry, type Registry } from '../../daemon/test/registry.js';
import { chainIds } from '../src/identity.js';
import { pull } from '../src/pull.js';
import type { ImageServices } from '../src/types.js';
import { createPullHost } from '../src/testing-fixtures/pull-host.js';

const ctx: OpContext = { namespace: 'default' };

describe.skipIf(!hasRegistry() || !hasRoot())('pull from docker-registry on loopback', () => {
  let scratch: string;
  let registry: Registry;
  let resolver: HttpResolver;
  let t: TestHost;
  let services: ImageServices;
  let layers: BuiltImage;
  let layersRef: string;
  let schema1Ref: string;
  const others: Record<string, string> = {};

  beforeAll(async () => {
    scratch = await mkdtemp(join(tmpdir(), 'berth-images-pull-'));
    registry = await startRegistry({ schema1: true });
    layers = await buildImage('layers', join(scratch, 'layers'));
    layersRef = (await pushLayout(registry, layers.dir, 'test/layers:latest')).reference;
    const old = await buildImage('schema1', join(scratch, 'schema1'));
    await pushSchema1(registry, old.dir, 'test/schema1:latest', signSchema1(old.schema1!, 'test/schema1', 'latest').manifest);
    schema1Ref = `${registry.host}/test/schema1:latest`;
    for (const name of ['docker', 'multi']) {
      const built = await buildImage(name, join(scratch, name));
      others[name] = (await pushLayout(registry, built.dir, `test/${name}:latest`)).reference;
    }
    resolver = createResolver({ credentials: async () => undefined });
    ({ t, services } = await createPullHost());
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
    async function ctrContent(ns = 'default'): Promise<Map<string, Record<string, string>>> {
      const r = await run(CTR, ['--address', berthd!.address, '-n', ns, 'content', 'ls']);
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
      berthd ??= await startBerthd({ config: NO_GC });
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

    it('converts a schema 1 image as ctr images pull does: the same manifest and config digests, labels and chain', async () => {
      berthd ??= await startBerthd({ config: NO_GC });
      const r = await run(CTR, ['--address', berthd.address, '-n', 'old', 'images', 'pull', '--plain-http', '--snapshotter', 'native', schema1Ref], { timeoutMs: 120_000 });
      expect(r.code, r.stderr).toBe(0);
      const ls = await run(CTR, ['--address', berthd.address, '-n', 'old', 'images', 'ls']);
      const theirTarget = /sha256:[0-9a-f]{64}/.exec(ls.stdout.split('\n').find((l) => l.startsWith(schema1Ref)) ?? '')?.[0];
      const old: OpContext = { namespace: 'old' };
      const ours = await pull(services, old, { ref: schema1Ref, resolver, snapshotter: 'native' });
      expect(ours.image.target.mediaType).toBe('application/vnd.oci.image.manifest.v1+json');
      expect(ours.image.target.digest).toBe(theirTarget);
      const chain = await run(CTR, ['--address', berthd.address, '-n', 'old', 'snapshots', '--snapshotter', 'native', 'info', ours.unpacked[0]!.chainId]);
      expect(chain.code, chain.stderr).toBe(0);
      const content = await run(CTR, ['--address', berthd.address, '-n', 'old', 'content', 'ls']);
      for (const line of content.stdout.trim().split('\n').slice(1)) {
        const fields = line.trim().split(/\s+/);
        const labels = Object.fromEntries((fields.at(-1)!.includes('=') ? fields.at(-1)!.split(',') : []).map((p) => [p.slice(0, p.indexOf('=')), p.slice(p.indexOf('=') + 1)]));
        expect({ digest: fields[0], labels: (await services.content.info(old, fields[0]!)).labels }).toEqual({ digest: fields[0], labels });
      }
    }, 180_000);

    it('labels Docker media types and a multi-platform index (host platform, and --all-platforms) as ctr does', async () => {
      berthd ??= await startBerthd({ config: NO_GC });
      const cases: [string, string, string[]][] = [
        ['docker', others.docker!, []],
        ['multi', others.multi!, []],
        ['multiall', others.multi!, ['--all-platforms']],
      ];
      for (const [ns, ref, flags] of cases) {
        const r = await run(CTR, ['--address', berthd.address, '-n', ns, 'images', 'pull', '--plain-http', '--snapshotter', 'native', ...flags, ref], { timeoutMs: 120_000 });
        expect(r.code, r.stderr).toBe(0);
        const nsCtx: OpContext = { namespace: ns };
        await pull(services, nsCtx, { ref, resolver, snapshotter: 'native', ...(flags.length > 0 ? { platforms: 'all' as const } : {}) });
        const theirs = await ctrContent(ns);
        expect(theirs.size).toBeGreaterThan(2);
        for (const [digest, labels] of theirs) {
          expect({ ns, digest, labels: (await services.content.info(nsCtx, digest)).labels }).toEqual({ ns, digest, labels });
        }
        // and nothing more than ctr fetched
        let ours = 0;
        for await (const info of services.content.list(nsCtx)) ours += info.digest ? 1 : 0;
        expect({ ns, blobs: ours }).toEqual({ ns, blobs: theirs.size });
      }
    }, 300_000);
  });
});
