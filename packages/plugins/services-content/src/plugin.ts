import { contentStoreToken, definePlugin, PluginKind, rpcServicesPoint } from '@berth/core';
import { ContentService } from './content-service.js';
import { PACKAGE_VERSION } from './version.js';

/** containerd.services.content.v1.Content over the namespaced content store (which publishes /content/delete). */
export const contentServicePlugin = definePlugin({
  type: PluginKind.GRPC,
  id: 'content',
  version: PACKAGE_VERSION,
  pluginApi: '^2.0.0',
  provides: rpcServicesPoint,
  requires: { content: contentStoreToken },
  init: ({ content }) => new ContentService(content),
});
export default contentServicePlugin;
