// Test helper (not built): the service over the real metadata plugin and an in-memory raw snapshotter plugin.
import { ServiceNames, type containerd } from '@berth/api';
import { definePlugin, exchangePlugin, PluginKind, rawContentStoreToken, rawSnapshotterToken } from '@berth/core';
import { createMemoryContentStore, createTestHost, MemorySnapshotter, override, rpcService, type TestHost } from '@berth/core/testing';
import metadataLmdbPlugin from '@berth/plugin-metadata-lmdb';
import { snapshotsServicePlugin } from '../plugin.js';

export type Handlers = containerd.services.snapshots.v1.SnapshotsHandlers;

export async function bootSnapshots(): Promise<{ host: TestHost; handlers: Handlers; raw: MemorySnapshotter }> {
  const raw = new MemorySnapshotter();
  const memory = definePlugin({ type: PluginKind.Snapshotter, id: 'mem', version: '0.0.0', pluginApi: '^2.0.0', provides: rawSnapshotterToken, init: () => raw });
  const host = await createTestHost({
    plugins: [memory, metadataLmdbPlugin, exchangePlugin, snapshotsServicePlugin],
    overrides: [override(rawContentStoreToken, createMemoryContentStore('raw'))],
  });
  return { host, raw, handlers: rpcService(host.host, ServiceNames.Snapshots).handlers as unknown as Handlers };
}
