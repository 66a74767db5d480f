import { containersToken, coreTokens, definePlugin, PluginKind, rpcServicesPoint, runtimeToken, snapshottersToken, taskMetricsToken } from '@berth/core';
import { TasksService } from './tasks-service.js';
import { PACKAGE_VERSION } from './version.js';

/**
 * containerd.services.tasks.v1.Tasks over the platform runtime (io.containerd.runtime.v2), the containers store
 * (spec, runtime, snapshot) and the namespaced snapshotters (a Create without rootfs mounts the container's snapshot).
 * Metrics come from the task monitor (io.containerd.monitor.v1) when one is loaded, else from the shims.
 */
export const tasksServicePlugin = definePlugin({
  type: PluginKind.GRPC,
  id: 'tasks',
  version: PACKAGE_VERSION,
  pluginApi: '^2.0.0',
  provides: rpcServicesPoint,
  requires: {
    runtime: runtimeToken,
    containers: containersToken,
    snapshotters: snapshottersToken,
    monitor: taskMetricsToken.optional,
    log: coreTokens.logger,
  },
  init: ({ runtime, containers, snapshotters, monitor, log }) => new TasksService(runtime, containers, snapshotters, log, monitor),
});
export default tasksServicePlugin;
