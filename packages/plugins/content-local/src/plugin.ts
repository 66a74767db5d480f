import { PluginKind, coreTokens, definePlugin, rawContentStoreToken } from '@berth/core';
import { contentLocalConfigDefaults, contentLocalConfigSchema, type ContentLocalConfig } from './config.js';
import { LocalContentStore } from './local-content-store.js';
import { PACKAGE_VERSION } from './version.js';

export const contentLocalPlugin = definePlugin({
  type: PluginKind.Content, // URI: io.containerd.content.v1.content
  id: 'content',
  version: PACKAGE_VERSION,
  pluginApi: '^2.0.0',
  description: 'content-addressed blob store on the local filesystem',
  provides: rawContentStoreToken,
  requires: { dirs: coreTokens.dirs, log: coreTokens.logger, metrics: coreTokens.metrics },
  config: { schema: contentLocalConfigSchema, defaults: contentLocalConfigDefaults },
  async init({ dirs, log, metrics }, config: ContentLocalConfig, ctx) {
    const root = config.root_path ?? dirs.root;
    const store = await LocalContentStore.open({ root, log, metrics });
    ctx.meta.exports.root = store.root;
    return store;
  },
});

export default contentLocalPlugin;
