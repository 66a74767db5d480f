import { containersToken, definePlugin, eventPublisherToken, eventSubscriberToken, extensionSchemasToken, PluginKind, rpcServicesPoint } from '@berth/core';
import { ExtensionsService } from './extensions-service.js';
import { PACKAGE_VERSION } from './version.js';

/**
 * berth.services.extensions.v1.Schemas and .Extensions (berth's own gRPC services) over the containers store, the
 * extension schema registry and the event exchange; publishes /containers/extensions/update.
 */
export const extensionsServicePlugin = definePlugin({
  type: PluginKind.GRPC,
  id: 'extensions',
  version: PACKAGE_VERSION,
  pluginApi: '^2.0.0',
  provides: rpcServicesPoint,
  requires: { containers: containersToken, schemas: extensionSchemasToken, events: eventPublisherToken, subscriber: eventSubscriberToken.optional },
  init: ({ containers, schemas, events, subscriber }) => new ExtensionsService(containers, schemas, events, subscriber),
});
export default extensionsServicePlugin;
