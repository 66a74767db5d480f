import { createTestHost } from '@berth/core/testing';
import { describe, expect, it } from 'vitest';
import { differWalkingPlugin, differWalkingToken } from './plugin.js';

describe('io.containerd.differ.v1.walking', () => {
  it('boots in a host with its config', async () => {
    const t = await createTestHost({ plugins: [differWalkingPlugin], pluginConfig: { 'io.containerd.differ.v1.walking': { greeting: 'hi' } } });
    try {
      expect(t.host.get(differWalkingToken).greet('berth')).toBe('hi, berth');
      expect(t.host.list()[0]).toMatchObject({ uri: 'io.containerd.differ.v1.walking', status: 'ok' });
    } finally {
      await t.close();
    }
  });

  it('refuses an unknown config key, naming the plugin', async () => {
    await expect(createTestHost({ plugins: [differWalkingPlugin], pluginConfig: { 'io.containerd.differ.v1.walking': { greting: 'x' } } })).rejects.toThrow('io.containerd.differ.v1.walking');
  });
});
