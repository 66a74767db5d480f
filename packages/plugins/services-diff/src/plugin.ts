import { definePlugin, differToken, PluginKind, rpcServicesPoint } from '@berth/core';
import { DiffService } from './diff-service.js';
import { PACKAGE_VERSION } from './version.js';

/** containerd.services.diff.v1.Diff (Apply, Diff) over the differ (io.containerd.differ.v1.walking). */
export const diffServicePlugin = definePlugin({
  type: PluginKind.GRPC,
  id: 'diff',
  version: PACKAGE_VERSION,
  pluginApi: '^2.0.0',
  provides: rpcServicesPoint,
  requires: { differ: differToken },
  init: ({ differ }) => new DiffService(differ),
});
export default diffServicePlugin;
