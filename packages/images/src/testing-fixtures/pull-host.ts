// The host the pull tests run against: real content (content-local + metadata-lmdb), the native snapshotter and the
// walking differ in a test host. Not used by the library itself.
import { applierToken, contentStoreToken, imagesToken, leasesToken, snapshottersToken, type ImageStore } from '@berth/core';
import { createTestHost, type TestHost } from '@berth/core/testing';
import contentLocalPlugin from '@berth/plugin-content-local';
import differWalkingPlugin from '@berth/plugin-differ-walking';
import metadataLmdbPlugin from '@berth/plugin-metadata-lmdb';
import nativeSnapshotterPlugin from '@berth/plugin-snapshotter-native';
import type { ImageServices } from '../types.js';

/** A test host and the services a pull needs from it; `images` replaces the host's image store when given. */
export async function createPullHost(images?: ImageStore): Promise<{ t: TestHost; services: ImageServices }> {
  const t = await createTestHost({ plugins: [contentLocalPlugin, metadataLmdbPlugin, nativeSnapshotterPlugin, differWalkingPlugin] });
  const services: ImageServices = {
    content: t.host.get(contentStoreToken),
    images: images ?? t.host.get(imagesToken),
    leases: t.host.get(leasesToken),
    snapshotters: t.host.get(snapshottersToken),
    applier: t.host.get(applierToken),
  };
  return { t, services };
}
