import { join } from 'node:path';
import { PluginKind, coreTokens, definePlugin, eventPublisherToken, runtimeToken } from '@berth/core';
import { runtimeRuncConfigDefaults, runtimeRuncConfigSchema, type RuntimeRuncConfig } from './config.js';
import { ShimRuntime } from './shim-runtime.js';
import { PACKAGE_VERSION } from './version.js';

/**
 * Tasks through runtime v2 shims (containerd-shim-runc-v2 by default): bundles under the plugin's state dir,
 * shims started with containerd's arguments, their events forwarded by the shims to `<grpc address>.ttrpc`.
 * At init it reconnects to the shims of a previous berthd and cleans up after dead ones.
 */
export const runtimeRuncPlugin = definePlugin({
  type: PluginKind.Runtime, // URI: io.containerd.runtime.v2.task
  id: 'task',
  version: PACKAGE_VERSION,
  pluginApi: '^2.0.0',
  description: 'runs tasks through runtime v2 shims (containerd-shim-runc-v2, runc or crun)',
  provides: runtimeToken,
  requires: { dirs: coreTokens.dirs, server: coreTokens.server, log: coreTokens.logger, events: eventPublisherToken, metrics: coreTokens.metrics },
  config: { schema: runtimeRuncConfigSchema, defaults: runtimeRuncConfigDefaults },
  async init({ dirs, server, log, events, metrics }, config: RuntimeRuncConfig, ctx) {
    const runcRoot = config.runc_root || join(server.state, 'runc');
    ctx.meta.exports.runc_root = runcRoot;
    return ShimRuntime.open({
      stateDir: dirs.state,
      rootDir: dirs.root,
      grpcAddress: server.grpcAddress,
      ttrpcAddress: server.ttrpcAddress,
      runcRoot,
      config,
      log,
      events,
      metrics,
    });
  },
});
export default runtimeRuncPlugin;
