import { collectableToken, coreTokens, definePlugin, gcToken, PluginKind } from '@berth/core';
import { gcSchedulerConfigDefaults, gcSchedulerConfigSchema, toSchedulerOptions } from './config.js';
import { GcScheduler, schedulerExports } from './scheduler.js';
import { PACKAGE_VERSION } from './version.js';

export const gcSchedulerPlugin = definePlugin({
  type: PluginKind.GC, // io.containerd.gc.v1.scheduler
  id: 'scheduler',
  version: PACKAGE_VERSION,
  pluginApi: '^2.0.0',
  description: 'schedules garbage collection of the metadata store (containerd gc policy)',
  provides: gcToken,
  requires: { collectable: collectableToken, log: coreTokens.logger, metrics: coreTokens.metrics },
  config: { schema: gcSchedulerConfigSchema, defaults: gcSchedulerConfigDefaults },
  init({ collectable, log, metrics }, config, ctx) {
    const scheduler = new GcScheduler(collectable, { ...toSchedulerOptions(config), log, metrics });
    Object.assign(ctx.meta.exports, schedulerExports(scheduler.settings));
    return scheduler;
  },
  close: (scheduler) => scheduler.close(),
});

export default gcSchedulerPlugin;
