import { coreTokens, definePlugin, PluginKind, rpcServicesPoint } from '@berth/core';
import { IntrospectionService } from './introspection-service.js';
import { PACKAGE_VERSION } from './version.js';

/** containerd.services.introspection.v1.Introspection: the plugin list and the server's persistent UUID. */
export const introspectionServicePlugin = definePlugin({
  type: PluginKind.GRPC,
  id: 'introspection',
  version: PACKAGE_VERSION,
  pluginApi: '^2.0.0',
  provides: rpcServicesPoint,
  requires: { plugins: coreTokens.plugins, dirs: coreTokens.dirs, log: coreTokens.logger },
  init: ({ plugins, dirs, log }) => IntrospectionService.open(plugins, dirs.root, log),
});
export default introspectionServicePlugin;
