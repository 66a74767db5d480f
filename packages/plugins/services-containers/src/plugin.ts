import { containersToken, coreTokens, definePlugin, eventPublisherToken, PluginKind, rpcServicesPoint } from '@berth/core';
import { ContainersService } from './containers-service.js';
import { PACKAGE_VERSION } from './version.js';

/**
 * containerd.services.containers.v1.Containers over the container store; publishes /containers/create|update|delete
 * and, for changed extensions, /containers/extensions/update.
 */
export const containersServicePlugin = definePlugin({
  type: PluginKind.GRPC,
  id: 'containers',
  version: PACKAGE_VERSION,
  pluginApi: '^2.0.0',
  provides: rpcServicesPoint,
  requires: { containers: containersToken, events: eventPublisherToken, log: coreTokens.logger },
  init: ({ containers, events, log }) => new ContainersService(containers, events, log),
});
export default containersServicePlugin;
