import { collectableToken, definePlugin, gcToken, leasesToken, PluginKind, rpcServicesPoint } from '@berth/core';
import { LeasesService } from './leases-service.js';
import { PACKAGE_VERSION } from './version.js';

/** containerd.services.leases.v1.Leases over the lease manager; `Delete{sync}` waits for the GC scheduler. */
export const leasesServicePlugin = definePlugin({
  type: PluginKind.GRPC,
  id: 'leases',
  version: PACKAGE_VERSION,
  pluginApi: '^2.0.0',
  provides: rpcServicesPoint,
  requires: { leases: leasesToken, gc: gcToken.optional, collectable: collectableToken.optional },
  init: ({ leases, gc, collectable }) => new LeasesService(leases, gc, collectable),
});
export default leasesServicePlugin;
