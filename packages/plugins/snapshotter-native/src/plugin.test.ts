import { readdir } from 'node:fs/promises';
import { rawSnapshotterToken } from '@berth/core';
import { createTestHost } from '@berth/core/testing';
import { describe, expect, it } from 'vitest';
import { snapshotterNativePlugin } from './plugin.js';

describe('io.containerd.snapshotter.v1.native', () => {
  it('boots in a host, provides the raw snapshotter by id and exports its root', async () => {
    const t = await createTestHost({ plugins: [snapshotterNativePlugin] });
    try {
      const sn = t.host.all(rawSnapshotterToken).get('native');
      expect(sn?.scope).toBe('raw');
      const entry = t.host.list().find((p) => p.uri === 'io.containerd.snapshotter.v1.native');
      expect(entry).toMatchObject({ status: 'ok' });
      expect(entry?.exports.root).toMatch(/io\.containerd\.snapshotter\.v1\.native$/);
      expect(entry?.platforms).toEqual([{ os: 'linux', architecture: process.arch === 'x64' ? 'amd64' : process.arch }]);
      await sn!.prepare({ namespace: 'x' }, 'k', '');
      expect(await readdir(entry!.exports.root!)).toEqual(expect.arrayContaining(['metadata.json', 'snapshots']));
    } finally {
      await t.close();
    }
  });

  it('refuses an unknown config key, naming the plugin', async () => {
    await expect(
      createTestHost({ plugins: [snapshotterNativePlugin], pluginConfig: { 'io.containerd.snapshotter.v1.native': { root: '/x' } } }),
    ).rejects.toThrow('io.containerd.snapshotter.v1.native');
  });
});
