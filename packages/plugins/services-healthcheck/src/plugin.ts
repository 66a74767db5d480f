import { implementService, ServiceNames } from '@berth/api';
import { definePlugin, PluginKind, rpcServicesPoint } from '@berth/core';
import { HealthService } from './health-service.js';
import { PACKAGE_VERSION } from './version.js';

/** grpc.health.v1.Health: SERVING while the daemon serves. */
export const healthServicePlugin = definePlugin({
  type: PluginKind.GRPC,
  id: 'healthcheck',
  version: PACKAGE_VERSION,
  pluginApi: '^2.0.0',
  provides: rpcServicesPoint,
  init: () => new HealthService(),
});
export default healthServicePlugin;
