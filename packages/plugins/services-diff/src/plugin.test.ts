import { createTestHost } from '@berth/core/testing';
import { describe, expect, it } from 'vitest';
import { servicesDiffPlugin, servicesDiffToken } from './plugin.js';

describe('io.containerd.grpc.v1.diff', () => {
  it('boots in a host with its config', async () => {
    const t = await createTestHost({ plugins: [servicesDiffPlugin], pluginConfig: { 'io.containerd.grpc.v1.diff': { greeting: 'hi' } } });
    try {
      expect(t.host.get(servicesDiffToken).greet('berth')).toBe('hi, berth');
      expect(t.host.list()[0]).toMatchObject({ uri: 'io.containerd.grpc.v1.diff', status: 'ok' });
    } finally {
      await t.close();
    }
  });

  it('refuses an unknown config key, naming the plugin', async () => {
    await expect(createTestHost({ plugins: [servicesDiffPlugin], pluginConfig: { 'io.containerd.grpc.v1.diff': { greting: 'x' } } })).rejects.toThrow('io.containerd.grpc.v1.diff');
  });
});
