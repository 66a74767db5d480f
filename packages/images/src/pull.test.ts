import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  AlreadyExistsError,
  applierToken,
  contentStoreToken,
  InvalidArgumentError,
  isCancelled,
  isNotFound,
  leasesToken,
  NotFoundError,
  snapshottersToken,
  type Image,
  type ImageInput,
  type ImageStore,
  type OpContext,
  type SnapshotInfo,
} from '@berth/core';
import { createTestHost, type TestHost } from '@berth/core/testing';
import contentLocalPlugin from '@berth/plugin-content-local';
import differWalkingPlugin from '@berth/plugin-differ-walking';
import metadataLmdbPlugin from '@berth/plugin-metadata-lmdb';
import overlaySnapshotterPlugin from '@berth/plugin-snapshotter-overlay';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { chainIds } from './identity.js';
import { MemoryRegistry } from './memory-registry.js';
import { pull } from './pull.js';
import { makeLayer, putImage, putIndex, type TestLayer } from './testing-fixtures/images.js';
import type { ImageServices, PullProgress } from './types.js';
import { createPullHost } from './testing-fixtures/pull-host.js';

/** A map-backed ImageStore for these tests (the real one is metadata-lmdb's, on the images branch). */
class MapImageStore implements ImageStore {
  readonly images = new Map<string, Image>();
  async get(ctx: OpContext, name: string): Promise<Image> {
    const img = this.images.get(`${ctx.namespace}/${name}`);
    if (!img) throw new NotFoundError(`image "${name}": not found`);
    return img;
  }
  async list(ctx: OpContext): Promise<Image[]> {
    return [...this.images.entries()].filter(([k]) => k.startsWith(`${ctx.namespace}/`)).map(([, v]) => v);
  }
  async create(ctx: OpContext, image: ImageInput): Promise<Image> {
    const key = `${ctx.namespace}/${image.name}`;
    if (this.images.has(key)) throw new AlreadyExistsError(`image "${image.name}": already exists`);
    const now = new Date();
    const img = { name: image.name, target: image.target, labels: { ...image.labels }, createdAt: now, updatedAt: now };
    this.images.set(key, img);
    return img;
  }
  async update(ctx: OpContext, image: ImageInput, fieldpaths: readonly string[] = []): Promise<Image> {
    const old = await this.get(ctx, image.name);
    const labels = { ...old.labels };
    let target = old.target;
    for (const p of fieldpaths) {
      if (p === 'target') target = image.target;
      else if (p.startsWith('labels.')) {
        const k = p.slice(7);
        const v = image.labels?.[k];
        if (v === undefined) delete labels[k];
        else labels[k] = v;
      } else throw new InvalidArgumentError(`cannot update ${p}`);
    }
    const img = { ...old, labels, target, updatedAt: new Date() };
    this.images.set(`${ctx.namespace}/${image.name}`, img);
    return img;
  }
  async delete(ctx: OpContext, name: string): Promise<void> {
    this.images.delete(`${ctx.namespace}/${name}`);
  }
}

const NS = 'pulls';
const ctx: OpContext = { namespace: NS };
const HOST = { os: 'linux', architecture: process.arch === 'arm64' ? 'arm64' : 'amd64' };
const OTHER = { os: 'linux', architecture: process.arch === 'arm64' ? 'amd64' : 'arm64' };
const asRoot = process.getuid?.() === 0;

async function snapshots(services: ImageServices, name = 'native'): Promise<SnapshotInfo[]> {
  const out: SnapshotInfo[] = [];
  for await (const s of services.snapshotters.get(name).walk(ctx)) out.push(s);
  return out;
}

/** Reads a file of a committed snapshot through a view of it (the native snapshotter's bind mount). */
async function readFromSnapshot(services: ImageServices, chainId: string, path: string): Promise<string> {
  const sn = services.snapshotters.get('native');
  const key = `view-${randomBytes(4).toString('hex')}`;
  const mounts = await sn.view(ctx, key, chainId);
  try {
    return readFileSync(join(mounts[0]!.source, path), 'utf8');
  } finally {
    await sn.remove(ctx, key);
  }
}

describe.skipIf(!asRoot)('pull into content-local + metadata-lmdb, unpacked by the walking differ into the native snapshotter', () => {
  let t: TestHost;
  let services: ImageServices;
  let imageStore: MapImageStore;
  let registry: MemoryRegistry;
  let base: TestLayer;
  let top: TestLayer;

  beforeEach(async () => {
    imageStore = new MapImageStore();
    ({ t, services } = await createPullHost(imageStore));
    registry = new MemoryRegistry();
    base = makeLayer({ 'etc/hostname': 'base\n', 'bin/tool': 'v1\n' });
    top = makeLayer({ 'bin/tool': 'v2\n', 'srv/data.bin': randomBytes(3 << 20) });
  });
  afterEach(async () => {
    await t.close();
  });

  function multiPlatform() {
    const mine = putImage(registry, HOST, [base, top]);
    const other = putImage(registry, OTHER, [makeLayer({ 'other-arch': 'x' })]);
    const index = putIndex(registry, [
      { image: other, platform: OTHER },
      { image: mine, platform: HOST },
    ]);
    const ref = registry.tag('test/busybox', 'latest', index);
    return { mine, other, index, ref };
  }

  it('fetches the host platform, labels every blob as containerd does, unpacks the chain and records the image', async () => {
    const { mine, other, index, ref } = multiPlatform();
    const events: PullProgress[] = [];
    const result = await pull(services, ctx, { ref, resolver: registry, snapshotter: 'native', labels: { team: 'a' }, onProgress: (e) => events.push(e) });

    const [c0, c1] = chainIds(mine.diffIds);
    expect(result.image).toMatchObject({ name: 'registry.test/test/busybox:latest', target: index, labels: { team: 'a' } });
    expect(result.unpacked).toEqual([{ platform: HOST, chainId: c1, snapshotter: 'native' }]);

    const source = { 'containerd.io/distribution.source.registry.test': 'test/busybox' };
    const labels = async (d: string) => (await services.content.info(ctx, d)).labels;
    expect(await labels(index.digest)).toEqual({ ...source, 'containerd.io/gc.ref.content.m.0': other.manifest.digest, 'containerd.io/gc.ref.content.m.1': mine.manifest.digest });
    expect(await labels(mine.manifest.digest)).toEqual({
      ...source,
      'containerd.io/gc.ref.content.config': mine.config.digest,
      'containerd.io/gc.ref.content.l.0': mine.layers[0]!.digest,
      'containerd.io/gc.ref.content.l.1': mine.layers[1]!.digest,
    });
    expect(await labels(mine.config.digest)).toEqual({ ...source, 'containerd.io/gc.ref.snapshot.native': c1 });
    expect(await labels(mine.layers[0]!.digest)).toEqual({ ...source, 'containerd.io/uncompressed': base.diffId });
    expect(await labels(mine.layers[1]!.digest)).toEqual({ ...source, 'containerd.io/uncompressed': top.diffId });
    // the other platform's manifest is labelled on the index but not fetched
    await expect(services.content.info(ctx, other.manifest.digest)).rejects.toSatisfy(isNotFound);

    const snaps = await snapshots(services);
    expect(snaps.map((s) => [s.name, s.kind, s.parent, s.labels['containerd.io/snapshot.ref']]).sort()).toEqual(
      [
        [c0, 'committed', '', c0],
        [c1, 'committed', c0, c1],
      ].sort(),
    );
    expect(await readFromSnapshot(services, c1!, 'bin/tool')).toBe('v2\n');
    expect(await readFromSnapshot(services, c1!, 'etc/hostname')).toBe('base\n');
    expect(await readFromSnapshot(services, c0!, 'bin/tool')).toBe('v1\n');

    // the pull's lease is gone, no ingest is left
    expect(await services.leases.list(ctx)).toEqual([]);
    expect(await services.content.listStatuses(ctx)).toEqual([]);
    const states = new Set(events.filter((e) => e.descriptor.digest === mine.layers[1]!.digest).map((e) => e.state));
    expect([...states]).toEqual(expect.arrayContaining(['waiting', 'downloading', 'unpacking', 'done']));
  });

  it('downloads nothing the second time, and points an existing image at the new target', async () => {
    const { ref } = multiPlatform();
    await pull(services, ctx, { ref, resolver: registry, snapshotter: 'native' });
    const served = registry.bytesServed();
    const gets = registry.gets.length;
    expect(served).toBeGreaterThan(3 << 20);
    const again = await pull(services, ctx, { ref, resolver: registry, snapshotter: 'native', labels: { again: 'yes' } });
    expect(registry.bytesServed()).toBe(served);
    expect(registry.gets.length).toBe(gets);
    expect(again.image.labels).toEqual({ again: 'yes' });

    // the tag moves to another image: update of the target
    const moved = putImage(registry, HOST, [base]);
    registry.tag('test/busybox', 'latest', moved.manifest);
    const third = await pull(services, ctx, { ref, resolver: registry, snapshotter: 'native' });
    expect(third.image.target).toEqual(moved.manifest);
    expect(imageStore.images.size).toBe(1);
  });

  it('resumes an interrupted pull without fetching finished layers again', async () => {
    const { mine, ref } = multiPlatform();
    const big = mine.layers[1]!;
    const stop = new AbortController();
    // the registry stalls the big layer after 2 MiB; the client gives up once the small one is in
    registry.fault(big.digest, { holdAfter: 2 << 20, times: 1 });
    let baseDone = false;
    let bigHeld = false;
    const first = pull(services, ctx, {
      ref,
      resolver: registry,
      snapshotter: 'native',
      signal: stop.signal,
      onProgress: (e) => {
        if (e.descriptor.digest === mine.layers[0]!.digest && e.state === 'done') baseDone = true;
        if (e.descriptor.digest === big.digest && e.state === 'downloading' && e.offset >= 2 << 20) bigHeld = true;
        if (baseDone && bigHeld) stop.abort();
      },
    });
    await expect(first).rejects.toSatisfy(isCancelled);
    expect(imageStore.images.size).toBe(0);
    // the interrupted pull's lease stays (expiring in 24 h) and holds what was fetched until the retry
    const [kept] = await services.leases.list(ctx);
    expect(Date.parse(kept!.labels['containerd.io/gc.expire']!) - Date.now()).toBeGreaterThan(23 * 3600_000);
    const held = await services.leases.listResources(ctx, kept!.id);
    expect(held).toEqual(expect.arrayContaining([{ id: mine.layers[0]!.digest, type: 'content' }, { id: `layer-${big.digest}`, type: 'ingests' }]));
    const base0 = registry.served.get(mine.layers[0]!.digest);
    expect(base0).toBe(mine.layers[0]!.size);
    const partial = (await services.content.listStatuses(ctx)).find((s) => s.ref === `layer-${big.digest}`);
    expect(partial?.offset).toBeGreaterThanOrEqual(2 << 20);

    const before = registry.gets.length;
    await pull(services, ctx, { ref, resolver: registry, snapshotter: 'native' });
    const later = registry.gets.slice(before);
    // only the rest of the big layer: not the finished one, not the manifests
    expect(later).toEqual([{ digest: big.digest, offset: partial!.offset }]);
    expect(registry.served.get(big.digest)).toBeLessThan(big.size + (2 << 20));
    expect(registry.served.get(mine.layers[0]!.digest)).toBe(base0);
    expect((await snapshots(services)).filter((s) => s.kind === 'committed')).toHaveLength(2);
  });

  it('fails on a blob whose bytes do not match its digest, naming it, and commits nothing of it', async () => {
    const { mine, ref } = multiPlatform();
    const bad = mine.layers[1]!;
    registry.fault(bad.digest, { replace: randomBytes(bad.size) });
    const err = (await pull(services, ctx, { ref, resolver: registry, snapshotter: 'native' }).catch((e: unknown) => e)) as Error;
    expect(err).toBeInstanceOf(Error);
    expect(err.message).toContain(bad.digest);
    expect(err).toMatchObject({ errdef: 'failed-precondition' });
    await expect(services.content.info(ctx, bad.digest)).rejects.toSatisfy(isNotFound);
    // the ingest was dropped (a retry starts over instead of resuming bytes that cannot verify)
    expect((await services.content.listStatuses(ctx)).map((s) => s.ref)).not.toContain(`layer-${bad.digest}`);
    const [, c1] = chainIds(mine.diffIds);
    expect((await snapshots(services)).map((s) => s.name)).not.toContain(c1);
    expect((await snapshots(services)).filter((s) => s.kind === 'active')).toEqual([]);
    expect(imageStore.images.size).toBe(0);

    registry.clearFaults();
    const ok = await pull(services, ctx, { ref, resolver: registry, snapshotter: 'native' });
    expect(ok.unpacked[0]!.chainId).toBe(c1);
  });

  it('never commits a snapshot whose diff ID does not match the config', async () => {
    const wrong = putImage(registry, HOST, [base, top], { diffIds: [base.diffId, base.diffId] });
    const ref = registry.tag('test/wrong', 'v1', wrong.manifest);
    await expect(pull(services, ctx, { ref, resolver: registry, snapshotter: 'native' })).rejects.toThrow(/wrong diff id .*layer/);
    const snaps = await snapshots(services);
    // the first layer verified and is committed; the second is not, and no extraction snapshot is left
    expect(snaps.map((s) => [s.name, s.kind])).toEqual([[base.diffId, 'committed']]);
    await expect(services.content.info(ctx, wrong.layers[1]!.digest).then((i) => i.labels['containerd.io/uncompressed'])).resolves.toBeUndefined();
    expect(imageStore.images.size).toBe(0);
  });

  it('lets two pulls of the same image run at once: one waits for the writers of the other, both succeed', async () => {
    const { mine, ref } = multiPlatform();
    const settled = await Promise.allSettled([
      pull(services, ctx, { ref, resolver: registry, snapshotter: 'native' }),
      pull(services, ctx, { ref, resolver: registry, snapshotter: 'native' }),
    ]);
    // a failure shows its message and errdef, not only that one of the two failed
    expect(settled.map((r) => (r.status === 'rejected' ? `${String((r.reason as Error).message)} (${String((r.reason as { errdef?: string }).errdef)})` : 'ok'))).toEqual(['ok', 'ok']);
    const [a, b] = settled.map((r) => (r as PromiseFulfilledResult<Awaited<ReturnType<typeof pull>>>).value);
    expect(a.unpacked[0]!.chainId).toBe(chainIds(mine.diffIds)[1]);
    expect(b.unpacked[0]!.chainId).toBe(a.unpacked[0]!.chainId);
    // each blob went over the wire once
    expect(registry.gets.filter((g) => g.digest === mine.layers[1]!.digest)).toEqual([{ digest: mine.layers[1]!.digest, offset: 0 }]);
    expect(registry.served.get(mine.layers[1]!.digest)).toBe(mine.layers[1]!.size);
    expect((await snapshots(services)).filter((s) => s.kind === 'active').map((s) => s.name)).toEqual([]);
  });

  it('fetches and unpacks every manifest of an index with all platforms, or the ones asked for', async () => {
    const { mine, other, ref } = multiPlatform();
    const all = await pull(services, ctx, { ref, resolver: registry, snapshotter: 'native', platforms: 'all' });
    expect(all.unpacked.map((u) => u.platform)).toEqual([OTHER, HOST]);
    await expect(services.content.info(ctx, other.manifest.digest)).resolves.toBeDefined();
    await expect(services.content.info(ctx, other.layers[0]!.digest)).resolves.toBeDefined();
    expect(all.unpacked.map((u) => u.chainId)).toEqual([chainIds(other.diffIds).at(-1), chainIds(mine.diffIds).at(-1)]);
  });

  it('fetches every platform but unpacks only the ones named in unpackPlatforms', async () => {
    const { mine, other, ref } = multiPlatform();
    const r = await pull(services, ctx, { ref, resolver: registry, snapshotter: 'native', platforms: 'all', unpackPlatforms: [HOST] });
    expect(r.unpacked.map((u) => u.platform)).toEqual([HOST]);
    expect(r.unpacked.map((u) => u.chainId)).toEqual([chainIds(mine.diffIds).at(-1)]);
    // the other platform's layers are fetched, and left packed
    await expect(services.content.info(ctx, other.layers[0]!.digest)).resolves.toBeDefined();
    const names = (await snapshots(services)).map((s) => s.name).join(' ');
    for (const chainId of chainIds(other.diffIds)) expect(names).not.toContain(chainId);
  });

  it('picks the best-ranked manifest for a platform: arm64 takes arm64/v8 over arm/v7', async () => {
    const l = makeLayer({ a: '1' });
    const v7 = putImage(registry, { os: 'linux', architecture: 'arm', variant: 'v7' }, [l]);
    const v8 = putImage(registry, { os: 'linux', architecture: 'arm64', variant: 'v8' }, [makeLayer({ b: '2' })]);
    const index = putIndex(registry, [
      { image: v7, platform: { os: 'linux', architecture: 'arm', variant: 'v7' } },
      { image: v8, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
    ]);
    const ref = registry.tag('test/arm', 'latest', index);
    const r = await pull(services, ctx, { ref, resolver: registry, snapshotter: 'native', platforms: [{ os: 'linux', architecture: 'aarch64' }] });
    expect(r.unpacked.map((u) => u.chainId)).toEqual([v8.diffIds[0]]);
    await expect(services.content.info(ctx, v7.manifest.digest)).rejects.toSatisfy(isNotFound);
    await expect(pull(services, ctx, { ref, resolver: registry, platforms: [{ os: 'linux', architecture: 's390x' }], unpack: false })).rejects.toThrow(
      'no match for platform',
    );
  });

  it('refuses a manifest that is not what its media type says, and a document that is not JSON, with clear errors', async () => {
    const entry = { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: `sha256:${'1'.repeat(64)}`, size: 2 };
    const index = registry.putJson({ schemaVersion: 2, manifests: [entry] }, 'application/vnd.oci.image.manifest.v1+json');
    const ref = registry.tag('test/liar', 'v1', index);
    await expect(pull(services, ctx, { ref, resolver: registry, snapshotter: 'native' })).rejects.toThrow(
      `manifest ${index.digest}: media-type: expected manifest but found index`,
    );
    const garbage = registry.put('{"schemaVersion": 2, "config": ', 'application/vnd.oci.image.manifest.v1+json');
    const ref2 = registry.tag('test/garbage', 'v1', garbage);
    await expect(pull(services, ctx, { ref: ref2, resolver: registry, snapshotter: 'native' })).rejects.toMatchObject({ errdef: 'data-loss' });
    const weird = registry.put('x', 'application/x-not-an-image');
    await expect(pull(services, ctx, { ref: registry.tag('test/weird', 'v1', weird), resolver: registry })).rejects.toThrow('not an image manifest or index');
    expect(imageStore.images.size).toBe(0);
  });
});

describe.skipIf(!asRoot)('pull into the overlayfs snapshotter (the default)', () => {
  it('unpacks into overlayfs and labels the config with gc.ref.snapshot.overlayfs', async (test) => {
    const t = await createTestHost({ plugins: [contentLocalPlugin, metadataLmdbPlugin, overlaySnapshotterPlugin, differWalkingPlugin] });
    try {
      const names = t.host.get(snapshottersToken).names();
      if (!names.includes('overlayfs')) {
        test.skip('overlayfs is not usable in this temp dir');
        return;
      }
      const services: ImageServices = {
        content: t.host.get(contentStoreToken),
        images: new MapImageStore(),
        leases: t.host.get(leasesToken),
        snapshotters: t.host.get(snapshottersToken),
        applier: t.host.get(applierToken),
      };
      const registry = new MemoryRegistry();
      const a = makeLayer({ 'a/one': '1', 'a/two': '2' });
      const b = makeLayer({ 'a/.wh.one': '', 'b/three': '3' });
      const image = putImage(registry, HOST, [a, b]);
      const ref = registry.tag('test/overlay', 'latest', image.manifest);
      const result = await pull(services, ctx, { ref, resolver: registry });
      const [c0, c1] = chainIds(image.diffIds);
      expect(result.unpacked).toEqual([{ platform: HOST, chainId: c1, snapshotter: 'overlayfs' }]);
      expect((await services.content.info(ctx, image.config.digest)).labels['containerd.io/gc.ref.snapshot.overlayfs']).toBe(c1);
      const sn = services.snapshotters.get('overlayfs');
      expect(await sn.stat(ctx, c1!)).toMatchObject({ kind: 'committed', parent: c0 });
      // the whiteout went into the upper dir in overlay form: a view of the top shows a/two, not a/one
      const mounts = await sn.view(ctx, 'check', c1!);
      const lowers = mounts[0]!.options.find((o) => o.startsWith('lowerdir='))!.slice('lowerdir='.length).split(':');
      const { lstatSync } = await import('node:fs');
      const wh = lstatSync(join(lowers[0]!, 'a', 'one'));
      expect(wh.isCharacterDevice() && wh.rdev === 0).toBe(true);
      await sn.remove(ctx, 'check');
    } finally {
      await t.close();
    }
  });
});

