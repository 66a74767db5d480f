import { definePlugin, eventsToken, metadataStoreToken, PluginKind, rpcServicesToken } from '@berth/core';
import { NamespacesService } from './namespaces-service.js';
import { PACKAGE_VERSION } from './version.js';

/** containerd.services.namespaces.v1.Namespaces over the metadata store; publishes /namespaces/* events. */
export const namespacesServicePlugin = definePlugin({
  type: PluginKind.GRPC,
  id: 'namespaces',
  version: PACKAGE_VERSION,
  pluginApi: '^1.0.0',
  provides: rpcServicesToken,
  requires: { metadata: metadataStoreToken, events: eventsToken },
  init: ({ metadata, events }) => new NamespacesService(metadata.namespaces, events),
});
export default namespacesServicePlugin;
