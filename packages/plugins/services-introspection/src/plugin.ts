import { coreTokens, definePlugin, PluginKind, rpcServicesToken } from '@berth/core';
import { IntrospectionService } from './introspection-service.js';
import { PACKAGE_VERSION } from './version.js';

/** containerd.services.introspection.v1.Introspection: the plugin list and the server's persistent UUID. */
export const introspectionServicePlugin = definePlugin({
  type: PluginKind.GRPC,
  id: 'introspection',
  version: PACKAGE_VERSION,
  pluginApi: '^1.0.0',
  provides: rpcServicesToken,
  requires: { plugins: coreTokens.plugins },
  init: ({ plugins }, _config, ctx) => IntrospectionService.open(plugins, ctx.root, ctx.log),
});
export default introspectionServicePlugin;
