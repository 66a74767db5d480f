import { metricsCollectorsPoint, runtimeToken, taskMetricsToken, type PlatformRuntime } from '@berth/core';
import { createTestHost, override } from '@berth/core/testing';
import { describe, expect, it } from 'vitest';
import { CgroupsMonitor } from './cgroups-monitor.js';
import { detectHierarchy } from './hierarchy.js';
import metricsCgroupsDefault, { metricsCgroupsPlugin } from './index.js';

const noTasks = { id: 'task', tasks: async () => [] } as unknown as PlatformRuntime;

describe('io.containerd.monitor.v1.cgroups', () => {
  it('provides the task monitor and a metrics collector, reporting the cgroup version it reads', async () => {
    expect(metricsCgroupsDefault).toBe(metricsCgroupsPlugin);
    const hierarchy = await detectHierarchy();
    const t = await createTestHost({ plugins: [metricsCgroupsPlugin], overrides: [override(runtimeToken, noTasks)] });
    try {
      const record = t.host.list().find((p) => p.uri === 'io.containerd.monitor.v1.cgroups')!;
      if (!hierarchy) {
        expect(record.status).toBe('skip');
        return;
      }
      expect(record).toMatchObject({ status: 'ok' });
      const monitor = t.host.get(taskMetricsToken);
      expect(monitor).toBeInstanceOf(CgroupsMonitor);
      expect((monitor as CgroupsMonitor).version).toBe(hierarchy.version);
      expect(t.host.all(metricsCollectorsPoint).get('cgroups')).toBe(monitor);
      expect(await (monitor as CgroupsMonitor).collect()).toEqual([]);
    } finally {
      await t.close();
    }
  });

  it('refuses an unknown config key and a bad hierarchy, naming the plugin', async () => {
    for (const bad of [{ hierarchy: 'v3' }, { concurrency: 0 }, { greting: 'x' }]) {
      await expect(
        createTestHost({ plugins: [metricsCgroupsPlugin], overrides: [override(runtimeToken, noTasks)], pluginConfig: { 'io.containerd.monitor.v1.cgroups': bad } }),
      ).rejects.toThrow('io.containerd.monitor.v1.cgroups');
    }
  });
});
