import { join } from 'node:path';
import {
  collectableToken,
  contentStoreToken,
  coreTokens,
  definePlugin,
  eventPublisherToken,
  leasesToken,
  metricsCollectorsPoint,
  namespacesToken,
  PluginKind,
  rawContentStoreToken,
} from '@berth/core';
import { metadataLmdbConfigDefaults, metadataLmdbConfigSchema } from './config.js';
import { LmdbMetadataStore } from './metadata-store.js';
import { PACKAGE_VERSION } from './version.js';

export const lmdbPlugin = definePlugin({
  type: PluginKind.Metadata, // io.containerd.metadata.v1
  id: 'lmdb',
  version: PACKAGE_VERSION,
  pluginApi: '^2.0.0',
  description: 'namespaces, namespaced content, leases and garbage collection on one LMDB environment',
  // One store, four capabilities: services require only the one they use.
  provides: { namespaces: namespacesToken, content: contentStoreToken, leases: leasesToken, collectable: collectableToken, metrics: metricsCollectorsPoint },
  requires: { raw: rawContentStoreToken, dirs: coreTokens.dirs, log: coreTokens.logger, events: eventPublisherToken.optional },
  config: { schema: metadataLmdbConfigSchema, defaults: metadataLmdbConfigDefaults },
  async init({ raw, dirs, log, events }, config, ctx) {
    const path = join(dirs.root, 'meta.lmdb');
    const store = await LmdbMetadataStore.open({
      path,
      content: raw,
      events,
      log,
      contentSharingPolicy: config.content_sharing_policy,
      ingestExpiryMs: config.ingest_expiry_seconds * 1000,
      mapSize: config.map_size,
      maxReaders: config.max_readers,
    });
    ctx.meta.exports.path = path;
    ctx.meta.exports.policy = config.content_sharing_policy;
    return store;
  },
});
export default lmdbPlugin;
