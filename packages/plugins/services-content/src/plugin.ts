import { definePlugin, eventsToken, metadataStoreToken, PluginKind, rpcServicesToken } from '@berth/core';
import { ContentService } from './content-service.js';
import { PACKAGE_VERSION } from './version.js';

/** containerd.services.content.v1.Content over the metadata store's namespaced content; publishes /content/delete. */
export const contentServicePlugin = definePlugin({
  type: PluginKind.GRPC,
  id: 'content',
  version: PACKAGE_VERSION,
  pluginApi: '^1.0.0',
  provides: rpcServicesToken,
  requires: { metadata: metadataStoreToken, events: eventsToken },
  init: ({ metadata, events }) => new ContentService(metadata.content, events),
});
export default contentServicePlugin;
