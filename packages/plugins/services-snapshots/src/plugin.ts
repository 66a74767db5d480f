import { definePlugin, PluginKind, rpcServicesPoint, snapshottersToken } from '@berth/core';
import { SnapshotsService } from './snapshots-service.js';
import { PACKAGE_VERSION } from './version.js';

/** containerd.services.snapshots.v1.Snapshots over the namespaced snapshotters (which publish /snapshot/*). */
export const snapshotsServicePlugin = definePlugin({
  type: PluginKind.GRPC,
  id: 'snapshots',
  version: PACKAGE_VERSION,
  pluginApi: '^2.0.0',
  provides: rpcServicesPoint,
  requires: { snapshotters: snapshottersToken },
  init: ({ snapshotters }) => new SnapshotsService(snapshotters),
});
export default snapshotsServicePlugin;
