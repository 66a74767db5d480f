import { coreTokens, definePlugin, PLUGIN_API_VERSION, PluginKind, rpcServicesPoint } from '@berth/core';
import { IntrospectionService, PLUGIN_API_EXPORT, ROOT_EXPORT } from './introspection-service.js';
import { PACKAGE_VERSION } from './version.js';

/** containerd.services.introspection.v1.Introspection: the plugin list and the server's persistent UUID. */
export const introspectionServicePlugin = definePlugin({
  type: PluginKind.GRPC,
  id: 'introspection',
  version: PACKAGE_VERSION,
  pluginApi: '^2.0.0',
  provides: rpcServicesPoint,
  requires: { plugins: coreTokens.plugins, dirs: coreTokens.dirs, log: coreTokens.logger, server: coreTokens.server },
  init: ({ plugins, dirs, log, server }, _config, ctx) => {
    // What `berth plugin install` checks a package against before it writes anything: the running plugin API and root.
    ctx.meta.exports[PLUGIN_API_EXPORT] = PLUGIN_API_VERSION;
    ctx.meta.exports[ROOT_EXPORT] = server.root;
    return IntrospectionService.open(plugins, dirs.root, log);
  },
});
export default introspectionServicePlugin;
