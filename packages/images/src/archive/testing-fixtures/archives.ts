// The stores the archive tests use: a real content store (content-local + metadata-lmdb) and an in-memory image store.
import { rm } from 'node:fs/promises';
import { afterEach, beforeEach } from 'vitest';
import contentLocalPlugin from '@berth/plugin-content-local';
import metadataLmdbPlugin from '@berth/plugin-metadata-lmdb';
import { contentStoreToken, exchangePlugin, leasesToken, type ContentStore, type LeaseManager } from '@berth/core';
import { createTestHost, type TestHost } from '@berth/core/testing';
import { createMemoryImageStore, workDir, type MemoryImageStore } from '../../testing/index.js';

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

/**
 * Gives each test of the file (or enclosing describe) fresh services and an empty work directory (`use`), closed and
 * removed after it, also when it fails.
 */
export function useServices(use: (services: Services, work: string) => void): void {
  let current: { services: Services; work: string } | undefined;
  beforeEach(async () => {
    current = { services: await services(), work: await workDir() };
    use(current.services, current.work);
  });
  afterEach(async () => {
    if (current === undefined) return;
    const { services: done, work } = current;
    current = undefined;
    await done.t.close();
    await rm(work, { recursive: true, force: true });
  });
}
