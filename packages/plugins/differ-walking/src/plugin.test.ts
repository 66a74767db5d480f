import { applierToken, comparerToken, contentIngesterToken, contentManagerToken, contentProviderToken, differToken, ingestManagerToken } from '@berth/core';
import { createMemoryContentStore, createTestHost, override } from '@berth/core/testing';
import { describe, expect, it } from 'vitest';
import { differWalkingPlugin } from './plugin.js';

const URI = 'io.containerd.differ.v1.walking';

/** The namespaced content roles, each served by one memory store (overrides do not expand a token's roles). */
function contentOverrides() {
  const store = createMemoryContentStore();
  return [override(contentProviderToken, store), override(contentIngesterToken, store), override(contentManagerToken, store), override(ingestManagerToken, store)];
}

describe(URI, () => {
  it('boots on the content roles, provides the differ and both its roles, and says which decompressors it uses', async () => {
    const t = await createTestHost({
      plugins: [differWalkingPlugin],
      overrides: contentOverrides(),
      pluginConfig: { [URI]: { workers: 3 } },
    });
    try {
      const differ = t.host.get(differToken);
      expect(t.host.get(applierToken)).toBe(differ);
      expect(t.host.get(comparerToken)).toBe(differ);
      const entry = t.host.list().find((p) => p.uri === URI);
      expect(entry).toMatchObject({ status: 'ok' });
      expect(JSON.stringify(entry)).toContain('workers: 3');
    } finally {
      await t.close();
    }
  });

  it('refuses an unknown config key and a bad value, naming the plugin', async () => {
    const boot = (config: unknown) =>
      createTestHost({ plugins: [differWalkingPlugin], overrides: contentOverrides(), pluginConfig: { [URI]: config } });
    await expect(boot({ worker: 2 })).rejects.toThrow(URI);
    await expect(boot({ devices: 'maybe' })).rejects.toThrow(URI);
  });
});
