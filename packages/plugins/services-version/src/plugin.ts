import { implementService, ServiceNames } from '@berth/api';
import { coreTokens, definePlugin, PluginKind, rpcServicesPoint } from '@berth/core';
import { PACKAGE_VERSION } from './version.js';

/** containerd.services.version.v1.Version: the daemon's version and revision. */
export const versionServicePlugin = definePlugin({
  type: PluginKind.GRPC,
  id: 'version',
  version: PACKAGE_VERSION,
  pluginApi: '^2.0.0',
  provides: rpcServicesPoint,
  requires: { server: coreTokens.server },
  init: ({ server }) => ({
    services: [
      implementService(ServiceNames.Version, {
        Version: async () => ({ version: server.version, revision: server.revision }),
      }),
    ],
  }),
});
export default versionServicePlugin;
