import { join } from 'node:path';
import { exchangePlugin, runtimeToken } from '@berth/core';
import { createTestHost } from '@berth/core/testing';
import { describe, expect, it } from 'vitest';
import { runtimeRuncPlugin } from './plugin.js';

describe('io.containerd.runtime.v2.task', () => {
  it('boots over the events exchange, provides the runtime, and roots runc under berthd\'s state dir', async () => {
    const t = await createTestHost({ plugins: [exchangePlugin, runtimeRuncPlugin] });
    try {
      const runtime = t.host.get(runtimeToken);
      expect(runtime.id).toBe('io.containerd.runtime.v2.task');
      expect(await runtime.tasks({ namespace: 'default' }, true)).toEqual([]);
      const record = t.host.list().find((p) => p.uri === 'io.containerd.runtime.v2.task');
      expect(record).toMatchObject({ status: 'ok' });
      expect(record?.exports.runc_root).toBe(join(t.server.state, 'runc'));
    } finally {
      await t.close();
    }
  });

  it('takes runc_root from its config', async () => {
    const t = await createTestHost({ plugins: [exchangePlugin, runtimeRuncPlugin], pluginConfig: { 'io.containerd.runtime.v2.task': { runc_root: '/run/berth-x/runc' } } });
    try {
      expect(t.host.list().find((p) => p.uri === 'io.containerd.runtime.v2.task')?.exports.runc_root).toBe('/run/berth-x/runc');
    } finally {
      await t.close();
    }
  });

  it('refuses an unknown config key, naming the plugin', async () => {
    await expect(createTestHost({ plugins: [exchangePlugin, runtimeRuncPlugin], pluginConfig: { 'io.containerd.runtime.v2.task': { call_timeout: 1 } } })).rejects.toThrow('io.containerd.runtime.v2.task');
  });
});
