import { createReadStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { applierToken, contentStoreToken, exchangePlugin, leasesToken, snapshottersToken, type LeaseManager } from '@berth/core';
import { createTestHost, expectFailure, type TestHost } from '@berth/core/testing';
import contentLocalPlugin from '@berth/plugin-content-local';
import differWalkingPlugin from '@berth/plugin-differ-walking';
import metadataLmdbPlugin from '@berth/plugin-metadata-lmdb';
import nativeSnapshotterPlugin from '@berth/plugin-snapshotter-native';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createMemoryImageStore, dockerFixture, HOST_ARCH, ociFixture, workDir } from '../testing/index.js';
import { onlyPlatform } from '../platforms.js';
import { importArchive } from './import.js';
import { unpackImage } from './unpack-image.js';

const ns = { namespace: 'default' };
const asRoot = process.getuid?.() === 0;

describe.skipIf(!asRoot)('unpackImage after an import (walking differ into the native snapshotter; needs root)', () => {
  let t: TestHost;
  let work: string;
  let svc: Parameters<typeof unpackImage>[0] & Parameters<typeof importArchive>[0] & { leases: LeaseManager };

  beforeEach(async () => {
    t = await createTestHost({ plugins: [contentLocalPlugin, metadataLmdbPlugin, exchangePlugin, nativeSnapshotterPlugin, differWalkingPlugin] });
    svc = {
      content: t.host.get(contentStoreToken),
      images: createMemoryImageStore(),
      leases: t.host.get(leasesToken),
      snapshotters: t.host.get(snapshottersToken),
      applier: t.host.get(applierToken),
    };
    work = await workDir();
  });
  afterEach(async () => {
    await t.close();
    await rm(work, { recursive: true, force: true });
  });

  it('commits the chain of the host platform of an OCI index and labels the config for the snapshot', async () => {
    const f = await ociFixture(work);
    const { images } = await importArchive(svc, ns, createReadStream(f.tar));
    const host = HOST_ARCH === 'amd64' ? f.amd64 : f.arm64;
    const r = await unpackImage(svc, ns, images[0]!.target, { snapshotter: 'native' });
    expect(r).toMatchObject({ chainId: host.diffId, snapshotter: 'native', platform: { os: 'linux', architecture: HOST_ARCH } });
    expect((await svc.snapshotters.get('native').stat(ns, host.diffId)).kind).toBe('committed');
    expect((await svc.content.info(ns, host.config.digest)).labels['containerd.io/gc.ref.snapshot.native']).toBe(host.diffId);
    expect(await svc.leases.list(ns)).toEqual([]);
    // The other platform's blobs are there too, but only when asked for and it is in the index.
    const other = HOST_ARCH === 'amd64' ? f.arm64 : f.amd64;
    const r2 = await unpackImage(svc, ns, images[0]!.target, { snapshotter: 'native', matcher: onlyPlatform({ os: 'linux', architecture: other.architecture }) });
    expect(r2.chainId).toBe(other.diffId);
  });

  it('unpacks the uncompressed layers of a docker save archive, and fails clearly when a layer is missing', async () => {
    const d = await dockerFixture(work);
    const { images } = await importArchive(svc, ns, createReadStream(d.tar));
    expect((await unpackImage(svc, ns, images[0]!.target, { snapshotter: 'native' })).chainId).toBe(d.layer.digest);

    const again = await dockerFixture(await mkdtemp(join(work, 'two-')), ['other:1']);
    const imported = await importArchive(svc, { namespace: 'two' }, createReadStream(again.tar));
    await svc.content.delete({ namespace: 'two' }, again.layer.digest);
    await expectFailure(unpackImage(svc, { namespace: 'two' }, imported.images[0]!.target, { snapshotter: 'native' }), 'not-found');
  });
});
