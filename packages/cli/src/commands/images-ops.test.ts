import { createReadStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { contentStoreToken, exchangePlugin, leasesToken, type Mount, type Snapshotter } from '@berth/core';
import { createMemorySnapshotter, createTestHost, expectFailure, type TestHost } from '@berth/core/testing';
import { importArchive } from '@berth/images';
import { createMemoryImageStore, HOST_ARCH, ociFixture, workDir } from '@berth/images/testing';
import contentLocalPlugin from '@berth/plugin-content-local';
import metadataLmdbPlugin from '@berth/plugin-metadata-lmdb';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { checkImages, inspectImage, labelImage, listImages, mountImage, removeImages, tagImage, unmountImage, type ImageCommandServices, type Mounter } from './images-ops.js';

const ns = { namespace: 'default' };
let t: TestHost;
let svc: ImageCommandServices & { images: ReturnType<typeof createMemoryImageStore> };
let snapshotter: ReturnType<typeof createMemorySnapshotter>;
let work: string;
let fixture: Awaited<ReturnType<typeof ociFixture>>;

beforeEach(async () => {
  t = await createTestHost({ plugins: [contentLocalPlugin, metadataLmdbPlugin, exchangePlugin] });
  snapshotter = createMemorySnapshotter();
  svc = {
    images: createMemoryImageStore(),
    content: t.host.get(contentStoreToken),
    leases: t.host.get(leasesToken),
    // The memory snapshotter is a raw one; its records are all these tests look at.
    snapshotter: (name) => {
      if (name !== 'overlayfs') throw new Error(`unexpected snapshotter ${name}`);
      return snapshotter as unknown as Snapshotter;
    },
  };
  work = await workDir();
  fixture = await ociFixture(work);
  await importArchive(svc, ns, createReadStream(fixture.tar), { baseName: 'example.test/base' });
});

afterEach(async () => {
  await t.close();
  await rm(work, { recursive: true, force: true });
});

const host = () => (HOST_ARCH === 'amd64' ? fixture.amd64 : fixture.arm64);

async function unpack(): Promise<void> {
  await snapshotter.prepare(ns, 'extract', '');
  await snapshotter.commit(ns, host().diffId, 'extract');
}

describe('berth images operations', () => {
  it('ls gives the host-platform size and the platforms of each image', async () => {
    const rows = await listImages(svc, ns, []);
    expect(rows.map((r) => r.image.name)).toEqual(['example.test/base:latest', 'example.test/img:1']);
    const index = rows.find((r) => r.image.name === 'example.test/img:1')!;
    const h = host();
    expect(index.size).toBe(fixture.index.size + h.manifest.size + h.config.size + h.layer.size);
    expect(index.platforms).toEqual(['linux/amd64', 'linux/arm64']);
    expect((await listImages(svc, ns, ['name==example.test/img:1'])).map((r) => r.image.name)).toEqual(['example.test/img:1']);
  });

  it('check reports completeness and the unpacked state, and an incomplete image after a layer is gone', async () => {
    let rows = await checkImages(svc, ns, ['name==example.test/img:1'], 'overlayfs');
    expect(rows[0]).toMatchObject({ status: 'complete (2/2)', complete: true, unpacked: false });
    await unpack();
    rows = await checkImages(svc, ns, ['name==example.test/img:1'], 'overlayfs');
    expect(rows[0]).toMatchObject({ unpacked: true });
    await svc.content.delete(ns, host().layer.digest);
    rows = await checkImages(svc, ns, ['name==example.test/img:1'], 'overlayfs');
    expect(rows[0]).toMatchObject({ status: 'incomplete (1/2)', complete: false, unpacked: false, missing: [host().layer.digest] });
  });

  it('inspect shows the tree; tag, label and rm change the store as ctr does', async () => {
    const { tree } = await inspectImage(svc, ns, 'example.test/img:1');
    expect(tree.descriptor.digest).toBe(fixture.index.digest);
    expect(tree.children.map((c) => c.descriptor.platform?.architecture).sort()).toEqual(['amd64', 'arm64']);
    expect(tree.children[0]?.children).toHaveLength(2);

    const [tagged] = await tagImage(svc, ns, 'example.test/img:1', ['copy:1'], false);
    expect(tagged?.target.digest).toBe(fixture.index.digest);
    await expectFailure(tagImage(svc, ns, 'example.test/img:1', ['copy:1'], false), 'already-exists');
    await tagImage(svc, ns, 'example.test/base:latest', ['copy:1'], true);
    expect((await svc.images.get(ns, 'copy:1')).target.digest).toBe(host().manifest.digest);

    expect((await labelImage(svc, ns, 'copy:1', { a: 'b', c: 'd' }, ['labels.a', 'labels.c'])).labels).toEqual({ a: 'b', c: 'd' });
    expect((await labelImage(svc, ns, 'copy:1', { a: '' }, ['labels.a'])).labels).toEqual({ c: 'd' });

    const r = await removeImages(svc, ns, ['copy:1', 'nope', 'example.test/base:latest'], true);
    expect(r).toMatchObject({ removed: ['copy:1', 'example.test/base:latest'], notFound: ['nope'], failed: [] });
    expect(svc.images.syncDeletes).toEqual(['example.test/base:latest']);
  });

  it('mount views the unpacked chain under a lease named after the target; unmount --rm removes both', async () => {
    const mounted: { mounts: readonly Mount[]; target: string }[] = [];
    const unmounted: string[] = [];
    const mounter: Mounter = {
      mountAll: async (mounts, target) => void mounted.push({ mounts, target }),
      unmountAll: async (target) => void unmounted.push(target),
    };
    await expectFailure(mountImage(svc, mounter, ns, 'example.test/img:1', '/mnt/x', { snapshotter: 'overlayfs', rw: false }), 'failed-precondition', /not unpacked/);
    await unpack();
    const chainId = await mountImage(svc, mounter, ns, 'example.test/img:1', '/mnt/x', { snapshotter: 'overlayfs', rw: false });
    expect(chainId).toBe(host().diffId);
    expect(mounted).toHaveLength(1);
    expect(mounted[0]?.target).toBe('/mnt/x');
    expect((await snapshotter.stat(ns, '/mnt/x')).parent).toBe(chainId);
    const leases = await t.host.get(leasesToken).list(ns);
    expect(leases.map((l) => [l.id, l.labels['containerd.io/gc.ref.snapshot.overlayfs']])).toEqual([['/mnt/x', '/mnt/x']]);

    await unmountImage(svc, mounter, ns, '/mnt/x', { rm: true, snapshotter: 'overlayfs' });
    expect(unmounted).toEqual(['/mnt/x']);
    await expectFailure(snapshotter.stat(ns, '/mnt/x'), 'not-found');
    expect(await t.host.get(leasesToken).list(ns)).toEqual([]);
  });

  it('mount removes its snapshot and lease again when mounting fails', async () => {
    await unpack();
    const failing: Mounter = { mountAll: async () => Promise.reject(new Error('mount: permission denied')), unmountAll: async () => undefined };
    await expect(mountImage(svc, failing, ns, 'example.test/img:1', '/mnt/y', { snapshotter: 'overlayfs', rw: true })).rejects.toThrow(/permission denied/);
    await expectFailure(snapshotter.stat(ns, '/mnt/y'), 'not-found');
    expect(await t.host.get(leasesToken).list(ns)).toEqual([]);
  });
});
