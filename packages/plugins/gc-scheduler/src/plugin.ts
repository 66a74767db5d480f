import { definePlugin, gcToken, metadataStoreToken, PluginKind } from '@berth/core';
import { gcSchedulerConfigDefaults, gcSchedulerConfigSchema, toSchedulerOptions } from './config.js';
import { GcScheduler, schedulerExports } from './scheduler.js';
import { PACKAGE_VERSION } from './version.js';

export const gcSchedulerPlugin = definePlugin({
  type: PluginKind.GC, // io.containerd.gc.v1.scheduler
  id: 'scheduler',
  version: PACKAGE_VERSION,
  pluginApi: '^1.0.0',
  description: 'schedules garbage collection of the metadata store (containerd gc policy)',
  provides: gcToken,
  requires: { metadata: metadataStoreToken },
  config: { schema: gcSchedulerConfigSchema, defaults: gcSchedulerConfigDefaults },
  init({ metadata }, config, ctx) {
    const scheduler = new GcScheduler(metadata, { ...toSchedulerOptions(config), log: ctx.log });
    Object.assign(ctx.meta.exports, schedulerExports(scheduler.settings));
    return scheduler;
  },
  // The instance is always the GcScheduler made above; the check narrows the token's GarbageCollector type.
  close: (instance) => (instance instanceof GcScheduler ? instance.close() : undefined),
});

export default gcSchedulerPlugin;
