export { default, metricsCgroupsPlugin } from './plugin.js';
export { CgroupsMonitor, type CgroupsMonitorOptions } from './cgroups-monitor.js';
export { detectHierarchy, parseHierarchy, cgroupOfProcess, cgroupOfSpecPath, type CgroupHierarchy, type TaskCgroup } from './hierarchy.js';
export { readV1Stats, type V1Metrics } from './v1-stats.js';
export { readV2Stats, type V2Metrics } from './v2-stats.js';
export { encodeStats, statsAnyValue, V1_METRICS_TYPE_URL, V2_METRICS_TYPE_URL, type CgroupStats } from './encode.js';
export { containerFamilies, type TaskStats } from './prometheus.js';
