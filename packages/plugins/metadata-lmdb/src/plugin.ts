import { join } from 'node:path';
import {
  collectableToken,
  containerExtensionsPoint,
  containersToken,
  contentStoreToken,
  coreTokens,
  definePlugin,
  eventPublisherToken,
  imagesToken,
  leasesToken,
  metricsCollectorsPoint,
  namespacesToken,
  PluginKind,
  rawContentStoreToken,
  rawSnapshotterToken,
  snapshottersToken,
} from '@berth/core';
import { metadataLmdbConfigDefaults, metadataLmdbConfigSchema } from './config.js';
import { LmdbMetadataStore } from './metadata-store.js';
import { PACKAGE_VERSION } from './version.js';

export const lmdbPlugin = definePlugin({
  type: PluginKind.Metadata, // io.containerd.metadata.v1
  id: 'lmdb',
  version: PACKAGE_VERSION,
  pluginApi: '^2.0.0',
  description: 'namespaces, namespaced content and snapshotters, leases, images, containers and garbage collection on one LMDB environment',
  // One store, several capabilities: services require only the one they use.
  provides: {
    namespaces: namespacesToken, content: contentStoreToken, snapshotters: snapshottersToken,
    leases: leasesToken, images: imagesToken, containers: containersToken, collectable: collectableToken, metrics: metricsCollectorsPoint,
  },
  requires: {
    // Every loaded snapshotter plugin by id (none is fine), as containerd's metadata plugin takes them by type.
    raw: rawContentStoreToken, rawSnapshotters: rawSnapshotterToken.all,
    dirs: coreTokens.dirs, log: coreTokens.logger, events: eventPublisherToken.optional,
    extensionPolicies: containerExtensionsPoint, // validation and index terms of extensions; none is fine
  },
  config: { schema: metadataLmdbConfigSchema, defaults: metadataLmdbConfigDefaults },
  async init({ raw, rawSnapshotters, dirs, log, events, extensionPolicies }, config, ctx) {
    const path = join(dirs.root, 'meta.lmdb');
    const store = await LmdbMetadataStore.open({
      path,
      content: raw,
      snapshotters: rawSnapshotters,
      events,
      log,
      contentSharingPolicy: config.content_sharing_policy,
      ingestExpiryMs: config.ingest_expiry_seconds * 1000,
      mapSize: config.map_size,
      maxReaders: config.max_readers,
      extensionPolicies: extensionPolicies.values(),
    });
    ctx.meta.exports.path = path;
    ctx.meta.exports.policy = config.content_sharing_policy;
    return store;
  },
});
export default lmdbPlugin;
