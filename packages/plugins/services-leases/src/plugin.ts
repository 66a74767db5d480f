import { definePlugin, gcToken, metadataStoreToken, optional, PluginKind, rpcServicesToken } from '@berth/core';
import { LeasesService } from './leases-service.js';
import { PACKAGE_VERSION } from './version.js';

/** containerd.services.leases.v1.Leases over the metadata store; `Delete{sync}` waits for the GC scheduler. */
export const leasesServicePlugin = definePlugin({
  type: PluginKind.GRPC,
  id: 'leases',
  version: PACKAGE_VERSION,
  pluginApi: '^1.0.0',
  provides: rpcServicesToken,
  requires: { metadata: metadataStoreToken, gc: optional(gcToken) },
  init: ({ metadata, gc }) => new LeasesService(metadata, gc),
});
export default leasesServicePlugin;
