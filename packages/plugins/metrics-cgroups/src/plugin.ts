import { PluginKind, SkipPluginError, containersToken, coreTokens, definePlugin, metricsCollectorsPoint, runtimeToken, taskMetricsToken } from '@berth/core';
import { CgroupsMonitor } from './cgroups-monitor.js';
import { metricsCgroupsConfigDefaults, metricsCgroupsConfigSchema, type MetricsCgroupsConfig } from './config.js';
import { detectHierarchy } from './hierarchy.js';
import { PACKAGE_VERSION } from './version.js';

/** Per-task cgroup statistics: Tasks.Metrics (through taskMetricsToken) and per-container series on /v1/metrics. */
export const metricsCgroupsPlugin = definePlugin({
  type: PluginKind.Monitor, // URI: io.containerd.monitor.v1.cgroups
  id: 'cgroups',
  version: PACKAGE_VERSION,
  pluginApi: '^2.0.0',
  description: 'per-task cgroup v1/v2 statistics for Tasks.Metrics and /v1/metrics',
  provides: { monitor: taskMetricsToken, collector: metricsCollectorsPoint },
  requires: { runtime: runtimeToken, containers: containersToken.optional, log: coreTokens.logger },
  config: { schema: metricsCgroupsConfigSchema, defaults: metricsCgroupsConfigDefaults },
  async init({ runtime, containers, log }, config: MetricsCgroupsConfig, ctx) {
    const hierarchy = await detectHierarchy(config.hierarchy);
    if (!hierarchy) throw new SkipPluginError(`no cgroup ${config.hierarchy === 'auto' ? '' : `${config.hierarchy} `}filesystem is mounted`);
    ctx.meta.exports.cgroup_version = String(hierarchy.version);
    const monitor = new CgroupsMonitor({ hierarchy, runtime, ...(containers ? { containers } : {}), log, concurrency: config.concurrency });
    return { monitor, collector: monitor };
  },
});
export default metricsCgroupsPlugin;
