import type { JSONSchemaType } from '@berth/core';

export interface MetricsCgroupsConfig {
  /** Which cgroup version's statistics to read: `auto` (the host's, as containerd decides it), `v1` or `v2`. */
  readonly hierarchy: 'auto' | 'v1' | 'v2';
  /** Tasks whose cgroup files a scrape reads at once. */
  readonly concurrency: number;
}

export const metricsCgroupsConfigDefaults: MetricsCgroupsConfig = { hierarchy: 'auto', concurrency: 8 };

export const metricsCgroupsConfigSchema: JSONSchemaType<MetricsCgroupsConfig> = {
  $id: 'io.containerd.monitor.v1.cgroups',
  type: 'object',
  additionalProperties: false,
  properties: {
    hierarchy: { type: 'string', enum: ['auto', 'v1', 'v2'] },
    concurrency: { type: 'integer', minimum: 1, maximum: 256 },
  },
  required: ['hierarchy', 'concurrency'],
};
