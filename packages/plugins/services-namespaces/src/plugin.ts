import { definePlugin, eventPublisherToken, namespacesToken, PluginKind, rpcServicesPoint } from '@berth/core';
import { NamespacesService } from './namespaces-service.js';
import { PACKAGE_VERSION } from './version.js';

/** containerd.services.namespaces.v1.Namespaces over the namespace store; publishes /namespaces/* events. */
export const namespacesServicePlugin = definePlugin({
  type: PluginKind.GRPC,
  id: 'namespaces',
  version: PACKAGE_VERSION,
  pluginApi: '^2.0.0',
  provides: rpcServicesPoint,
  requires: { namespaces: namespacesToken, events: eventPublisherToken },
  init: ({ namespaces, events }) => new NamespacesService(namespaces, events),
});
export default namespacesServicePlugin;
