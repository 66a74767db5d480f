// The stores the archive tests use: a real content store (content-local + metadata-lmdb) and an in-memory image store.
import contentLocalPlugin from '@berth/plugin-content-local';
import metadataLmdbPlugin from '@berth/plugin-metadata-lmdb';
import { contentStoreToken, exchangePlugin, leasesToken, type ContentStore, type LeaseManager } from '@berth/core';
import { createTestHost, type TestHost } from '@berth/core/testing';
import { createMemoryImageStore, type MemoryImageStore } from '../../testing/index.js';

export * from '../../testing/archives.js';

export interface Services {
  readonly t: TestHost;
  readonly content: ContentStore;
  readonly leases: LeaseManager;
  readonly images: MemoryImageStore;
}

/** A real content store (content-local + metadata-lmdb) in a test host, and an in-memory image store. */
export async function services(): Promise<Services> {
  const t = await createTestHost({ plugins: [contentLocalPlugin, metadataLmdbPlugin, exchangePlugin] });
  return { t, content: t.host.get(contentStoreToken), leases: t.host.get(leasesToken), images: createMemoryImageStore() };
}

