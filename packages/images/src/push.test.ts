import { isNotFound, writeBlob, type ContentStore, type Descriptor, type OpContext } from '@berth/core';
import { createMemoryContentStore, failureOf } from '@berth/core/testing';
import type { Pusher, Resolver } from '@berth/registry';
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { MemoryRegistry } from './memory-registry.js';
import { push } from './push.js';
import { createMemoryImageStore, type MemoryImageStore } from './testing/index.js';
import { makeLayer, putImage, putIndex, type TestImage, type TestLayer } from './testing-fixtures/images.js';
import type { PushProgress } from './types.js';

const ctx: OpContext = { namespace: 'pushes' };
const AMD64 = { os: 'linux', architecture: 'amd64' };
const ARM64 = { os: 'linux', architecture: 'arm64' };
const SOURCE_KEY = 'containerd.io/distribution.source.registry.test';

let layers: TestLayer[];
beforeAll(() => {
  layers = [makeLayer({ 'etc/hostname': 'base\n' }), makeLayer({ 'bin/tool': 'v2\n' }), makeLayer({ 'other-arch': 'x' })];
});

describe('push from the content store to a registry', () => {
  let built: MemoryRegistry;
  let registry: MemoryRegistry;
  let content: ContentStore;
  let images: MemoryImageStore;
  let amd: TestImage;
  let arm: TestImage;
  let index: Descriptor;

  beforeEach(() => {
    built = new MemoryRegistry();
    registry = new MemoryRegistry();
    content = createMemoryContentStore() as unknown as ContentStore;
    images = createMemoryImageStore();
    amd = putImage(built, AMD64, [layers[0]!, layers[1]!]);
    arm = putImage(built, ARM64, [layers[0]!, layers[2]!]);
    index = putIndex(built, [
      { image: amd, platform: AMD64 },
      { image: arm, platform: ARM64 },
    ]);
  });

  /** Copies blobs the builder made into the content store, as a pull would have left them. */
  async function load(descs: readonly Descriptor[]): Promise<void> {
    const fetcher = built.fetcher('registry.test/built:latest');
    for (const d of descs) {
      await writeBlob(content, ctx, async function* () {
        yield* (await fetcher.fetch(d)).chunks;
      }, { ref: `load-${d.digest}`, total: d.size, expected: d.digest });
    }
  }
  const treeOf = (img: TestImage) => [img.manifest, img.config, ...img.layers];
  const everything = () => [index, ...treeOf(amd), ...treeOf(arm)];

  async function loadAll(): Promise<void> {
    await load(everything());
    await images.create(ctx, { name: 'local/busybox:latest', target: index });
  }

  it('pushes a whole index children first, the index last under the tag, and labels every blob with the repository', async () => {
    await loadAll();
    const events: PushProgress[] = [];
    const result = await push({ content, images }, ctx, {
      ref: 'registry.test/test/copy:v1',
      image: 'local/busybox:latest',
      resolver: registry,
      onProgress: (e) => events.push(e),
    });
    expect(result.name).toBe('registry.test/test/copy:v1');
    expect(result.descriptor.digest).toBe(index.digest);
    expect((await registry.resolve('registry.test/test/copy:v1')).descriptor.digest).toBe(index.digest);
    // every distinct blob once (the shared base layer too), all uploaded
    const digests = new Set(everything().map((d) => d.digest));
    expect(registry.pushes.map((p) => p.digest).sort()).toEqual([...digests].sort());
    expect(registry.pushes.every((p) => p.outcome === 'uploaded')).toBe(true);
    // children before parents: each manifest after its blobs, the index last and the only one tagged
    const at = (d: Descriptor) => registry.pushes.findIndex((p) => p.digest === d.digest);
    for (const img of [amd, arm]) for (const b of [img.config, ...img.layers]) expect(at(b)).toBeLessThan(at(img.manifest));
    expect(at(index)).toBe(registry.pushes.length - 1);
    expect(registry.pushes.filter((p) => p.reference === 'v1').map((p) => p.digest)).toEqual([index.digest]);
    for (const d of digests) expect((await content.info(ctx, d)).labels[SOURCE_KEY]).toBe('test/copy');
    expect(events.filter((e) => e.state === 'done').length).toBe(digests.size);
    expect(events.some((e) => e.state === 'uploading' && e.offset > 0)).toBe(true);
  });

  it('pushes nothing again: a second push finds every blob there', async () => {
    await loadAll();
    await push({ content, images }, ctx, { ref: 'registry.test/test/copy:v1', image: 'local/busybox:latest', resolver: registry });
    const first = registry.pushes.length;
    const events: PushProgress[] = [];
    await push({ content, images }, ctx, { ref: 'registry.test/test/copy:v1', image: 'local/busybox:latest', resolver: registry, onProgress: (e) => events.push(e) });
    const second = registry.pushes.slice(first);
    expect(second.length).toBe(first);
    expect(second.every((p) => p.outcome === 'exists')).toBe(true);
    expect(events.filter((e) => e.state !== 'waiting').every((e) => e.state === 'exists')).toBe(true);
  });

  it('mounts blobs from the repository their distribution source label names, and uploads only the manifests', async () => {
    await loadAll();
    await push({ content, images }, ctx, { ref: 'registry.test/test/copy:v1', image: 'local/busybox:latest', resolver: registry });
    const first = registry.pushes.length;
    await push({ content, images }, ctx, { ref: 'registry.test/other/copy:v2', image: 'local/busybox:latest', resolver: registry });
    const second = registry.pushes.slice(first);
    const manifests = new Set([index.digest, amd.manifest.digest, arm.manifest.digest]);
    for (const p of second) expect(p.outcome).toBe(manifests.has(p.digest) ? 'uploaded' : 'mounted');
    expect(second.filter((p) => p.outcome === 'mounted').length).toBe(second.length - 3);
    expect((await content.info(ctx, amd.config.digest)).labels[SOURCE_KEY]).toBe('other/copy,test/copy');
    expect((await registry.resolve('registry.test/other/copy:v2')).descriptor.digest).toBe(index.digest);
  });

  it('pushes one platform of an index as that manifest under the tag; the other platform need not be there', async () => {
    await load([index, ...treeOf(amd)]);
    await images.create(ctx, { name: 'registry.test/test/copy:amd', target: index });
    const result = await push({ content, images }, ctx, { ref: 'registry.test/test/copy:amd', resolver: registry, platforms: [AMD64] });
    expect(result.descriptor.digest).toBe(amd.manifest.digest);
    expect((await registry.resolve('registry.test/test/copy:amd')).descriptor.digest).toBe(amd.manifest.digest);
    expect(registry.pushes.map((p) => p.digest).sort()).toEqual(treeOf(amd).map((d) => d.digest).sort());
    expect(registry.has('test/copy', index.digest)).toBe(false);
  });

  it('names the missing digest when a platform was not pulled, before pushing anything', async () => {
    await load([index, ...treeOf(amd)]);
    await images.create(ctx, { name: 'local/partial', target: index });
    for (const platforms of [undefined, 'all' as const]) {
      const err = await failureOf(push({ content, images }, ctx, { ref: 'registry.test/test/copy:v1', image: 'local/partial', resolver: registry, ...(platforms ? { platforms } : {}) }));
      expect(isNotFound(err)).toBe(true);
      expect(err.message).toContain(arm.manifest.digest);
    }
    expect(registry.pushes).toEqual([]);
  });

  it('fails clearly on an unknown image or a platform the index lacks', async () => {
    await loadAll();
    const missing = await failureOf(push({ content, images }, ctx, { ref: 'registry.test/test/copy:v1', image: 'local/nothing', resolver: registry }));
    expect(isNotFound(missing)).toBe(true);
    expect(missing.message).toContain('local/nothing');
    const noPlatform = await failureOf(
      push({ content, images }, ctx, { ref: 'registry.test/test/copy:v1', image: 'local/busybox:latest', resolver: registry, platforms: [{ os: 'linux', architecture: 's390x' }] }),
    );
    expect(isNotFound(noPlatform)).toBe(true);
    expect(noPlatform.message).toContain('linux/s390x');
    expect(registry.pushes).toEqual([]);
  });

  /** The registry as a resolver whose pushes go through `push` (given the registry's own pusher). */
  const withPush = (push: (inner: Pusher, ...args: Parameters<Pusher['push']>) => ReturnType<Pusher['push']>): Resolver => ({
    resolve: (ref) => registry.resolve(ref),
    fetcher: (ref) => registry.fetcher(ref),
    pusher: (ref): Pusher => {
      const inner = registry.pusher(ref);
      return { exists: (d, o) => inner.exists(d, o), push: (d, c, o) => push(inner, d, c, o) };
    },
  });

  it('stops at a failed upload: the error names the blob and no manifest is pushed', async () => {
    await loadAll();
    const failing = withPush(async (inner, d, c, o) => {
      if (d.digest === arm.layers[1]!.digest) throw new Error('connection reset by peer');
      return inner.push(d, c, o);
    });
    const err = await failureOf(push({ content, images }, ctx, { ref: 'registry.test/test/copy:v1', image: 'local/busybox:latest', resolver: failing, concurrency: 1 }));
    expect(err.message).toContain(arm.layers[1]!.digest);
    expect(err.message).toContain('connection reset by peer');
    const manifests = new Set([index.digest, amd.manifest.digest, arm.manifest.digest]);
    expect(registry.pushes.some((p) => manifests.has(p.digest))).toBe(false);
  });

  it('reports the failure itself, not the cancellations of the uploads it stopped', async () => {
    await loadAll();
    const failing: Resolver = {
      resolve: (ref) => registry.resolve(ref),
      fetcher: (ref) => registry.fetcher(ref),
      pusher: (): Pusher => ({
        exists: async () => false,
        push: async (d, _c, o) => {
          // the last blob fails; the others hang until the push aborts them
          if (d.digest === arm.layers[1]!.digest) throw new Error('401 Unauthorized');
          await new Promise((_, reject) => o?.signal?.addEventListener('abort', () => reject(new Error('cancelled')), { once: true }));
          return 'uploaded';
        },
      }),
    };
    const err = await failureOf(push({ content, images }, ctx, { ref: 'registry.test/test/copy:v1', image: 'local/busybox:latest', resolver: failing, concurrency: 8 }));
    expect(err.message).toContain('401 Unauthorized');
    expect(err.message).toContain(arm.layers[1]!.digest);
  });

  it('stops when its signal aborts: nothing more is sent and the index is not tagged', async () => {
    await loadAll();
    const abort = new AbortController();
    const slow = withPush(async (inner, d, c, o) => {
      abort.abort(new Error('interrupted by the user'));
      return inner.push(d, c, o);
    });
    const err = await failureOf(push({ content, images }, ctx, { ref: 'registry.test/test/copy:v1', image: 'local/busybox:latest', resolver: slow, concurrency: 1, signal: abort.signal }));
    expect(err.message).toContain('interrupted by the user');
    expect(registry.pushes.length).toBeLessThan(everything().length);
    expect(registry.pushes.some((p) => p.digest === index.digest)).toBe(false);
  });

  it('pushes several platforms as the index with only their manifests', async () => {
    await loadAll();
    const result = await push({ content, images }, ctx, { ref: 'registry.test/test/copy:v1', image: 'local/busybox:latest', resolver: registry, platforms: [AMD64, ARM64] });
    expect(result.descriptor.digest).toBe(index.digest);
    expect(new Set(registry.pushes.map((p) => p.digest))).toEqual(new Set(everything().map((d) => d.digest)));
  });
});
