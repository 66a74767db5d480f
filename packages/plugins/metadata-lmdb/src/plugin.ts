import { join } from 'node:path';
import { PluginKind, contentStoreToken, definePlugin, metadataStoreToken } from '@berth/core';
import { metadataLmdbConfigDefaults, metadataLmdbConfigSchema } from './config.js';
import { LmdbMetadataStore } from './metadata-store.js';
import { PACKAGE_VERSION } from './version.js';

export const lmdbPlugin = definePlugin({
  type: PluginKind.Metadata, // io.containerd.metadata.v1
  id: 'lmdb',
  version: PACKAGE_VERSION,
  pluginApi: '^1.0.0',
  description: 'namespaces, namespaced content, leases and garbage collection on one LMDB environment',
  provides: metadataStoreToken,
  requires: { content: contentStoreToken },
  config: { schema: metadataLmdbConfigSchema, defaults: metadataLmdbConfigDefaults },
  async init({ content }, config, ctx) {
    const path = join(ctx.root, 'meta.lmdb');
    const store = await LmdbMetadataStore.open({
      path,
      content,
      log: ctx.log,
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
