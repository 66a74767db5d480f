import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PluginKind, isPluginManifest, pluginUri, rawSnapshotterToken } from '@berth/core';
import { createTestHost } from '@berth/core/testing';
import nativeSnapshotterPlugin from '@berth/plugin-snapshotter-native';
import { afterEach, describe, expect, it } from 'vitest';
import { overlayConfigSchema } from './config.js';
import overlayDefault, { OverlaySnapshotter, overlaySnapshotterPlugin } from './index.js';
import { mountsUnavailable } from './testing-fixtures/helpers.js';
import { PACKAGE_VERSION } from './version.js';

const URI = 'io.containerd.snapshotter.v1.overlayfs';
const ctx = { namespace: 'default' };
const unavailable = mountsUnavailable();

describe('overlaySnapshotterPlugin', () => {
  const dirs: string[] = [];
  afterEach(async () => {
    for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
  });
  const tempDir = async () => {
    const dir = await mkdtemp(join(tmpdir(), 'berth-overlay-plugin-'));
    dirs.push(dir);
    return dir;
  };

  it('is a manifest for io.containerd.snapshotter.v1.overlayfs providing a raw snapshotter', () => {
    expect(isPluginManifest(overlaySnapshotterPlugin)).toBe(true);
    expect(overlayDefault).toBe(overlaySnapshotterPlugin);
    expect(pluginUri(overlaySnapshotterPlugin)).toBe(URI);
    expect(overlaySnapshotterPlugin.type).toBe(PluginKind.Snapshotter);
    expect(overlaySnapshotterPlugin.provides).toBe(rawSnapshotterToken);
    expect(overlayConfigSchema.$id).toBe(URI);
  });

  it('refuses unknown config keys and malformed mount options, naming the plugin', async () => {
    await expect(createTestHost({ plugins: [overlaySnapshotterPlugin], pluginConfig: { [URI]: { root: '/x' } } })).rejects.toThrow(URI);
    await expect(createTestHost({ plugins: [overlaySnapshotterPlugin], pluginConfig: { [URI]: { mount_options: ['a,b'] } } })).rejects.toThrow(URI);
  });

  it.skipIf(unavailable !== undefined)(`boots where overlayfs mounts, serves by id and exports its root${unavailable ? ` (skipped: ${unavailable})` : ''}`, async () => {
    const dir = await tempDir();
    const t = await createTestHost({ plugins: [overlaySnapshotterPlugin], required: [URI], dir });
    try {
      const root = join(t.server.root, URI);
      const platform = { os: 'linux', architecture: process.arch === 'x64' ? 'amd64' : process.arch };
      expect(t.host.list().find((r) => r.uri === URI)).toMatchObject({ status: 'ok', version: PACKAGE_VERSION, exports: { root }, platforms: [platform] });
      const byId = t.host.all(rawSnapshotterToken);
      expect([...byId.keys()]).toEqual(['overlayfs']);
      const s = byId.get('overlayfs')!;
      expect(s).toBeInstanceOf(OverlaySnapshotter);
      expect(s.scope).toBe('raw');
      const [m] = await s.prepare(ctx, 'k', '');
      expect(m!.source).toBe(join(root, 'snapshots', '1', 'fs'));
      // The probe cleaned up after itself.
      expect((await readdir(root)).sort()).toEqual(['metadata.lmdb', 'metadata.lmdb-lock', 'snapshots']);
    } finally {
      await t.close();
    }
  });

  it.skipIf(unavailable !== undefined)('uses root_path and puts mount_options into its overlay mounts', async () => {
    const dir = await tempDir();
    const root = join(dir, 'elsewhere');
    const t = await createTestHost({ plugins: [overlaySnapshotterPlugin], required: [URI], pluginConfig: { [URI]: { root_path: root, mount_options: ['nfs_export=off'] } } });
    try {
      const s = t.host.get(rawSnapshotterToken);
      await s.prepare(ctx, 'k', '');
      await s.commit(ctx, 'c', 'k');
      const [m] = await s.prepare(ctx, 'k2', 'c');
      expect(m!.options).toContain('nfs_export=off');
      expect(m!.options.at(-1)).toBe(`lowerdir=${join(root, 'snapshots', '1', 'fs')}`);
      expect(t.host.list().find((r) => r.uri === URI)?.exports).toEqual({ root });
    } finally {
      await t.close();
    }
  });

  it.skipIf(unavailable !== undefined)('is skipped, saying why, when overlayfs cannot mount with its options, and leaves nothing behind', async () => {
    const dir = await tempDir();
    const t = await createTestHost({ plugins: [overlaySnapshotterPlugin], dir, pluginConfig: { [URI]: { mount_options: ['no_such_overlay_option'] } } });
    try {
      const record = t.host.list().find((r) => r.uri === URI)!;
      expect(record.status).toBe('skip');
      expect(record.error?.message).toMatch(/^overlayfs is not usable in .*: overlay mount with options ".*no_such_overlay_option.*" failed: EINVAL/);
      // Nothing mounted or left behind by the probe.
      const root = join(t.server.root, URI);
      expect(await readdir(root)).toEqual([]);
    } finally {
      await t.close();
    }
  });

  it.skipIf(unavailable !== undefined)('with simulate_unavailable, is skipped as on a kernel without overlayfs (ENODEV), and native still serves', async () => {
    const dir = await tempDir();
    const t = await createTestHost({
      plugins: [overlaySnapshotterPlugin, nativeSnapshotterPlugin],
      dir,
      pluginConfig: { [URI]: { simulate_unavailable: true } },
    });
    try {
      const root = join(t.server.root, URI);
      const record = t.host.list().find((r) => r.uri === URI)!;
      expect(record.status).toBe('skip');
      expect(record.platforms).toHaveLength(1);
      // The probe's directory has a random name; index=off is there where the kernel has the feature.
      const message = record.error!.message.replaceAll(/probe-[A-Za-z0-9]{6}/g, 'probe-X').replace('"index=off,', '"');
      const probe = `${root}/probe-X`;
      expect(message).toBe(
        `overlayfs is not usable in ${root}: "berth-simulated-no-overlay" mount with options ` +
          `"workdir=${probe}/work,upperdir=${probe}/upper,lowerdir=${probe}/lower2:${probe}/lower1" ` +
          `failed: ENODEV: no such device, mount 'overlay' -> '${probe}/merged' (simulate_unavailable is set): skip plugin`,
      );
      expect(await readdir(root)).toEqual([]);
      // The raw snapshotters by id: native only, and it works.
      const byId = t.host.all(rawSnapshotterToken);
      expect([...byId.keys()]).toEqual(['native']);
      await byId.get('native')!.prepare(ctx, 'k', '');
      expect(await byId.get('native')!.stat(ctx, 'k')).toMatchObject({ kind: 'active', name: 'k' });
      expect(t.host.list().find((r) => r.uri === 'io.containerd.snapshotter.v1.native')).toMatchObject({ status: 'ok' });
    } finally {
      await t.close();
    }
  });

  it.skipIf(process.getuid?.() === 0)('is skipped without root (overlay mounts need it)', async () => {
    const t = await createTestHost({ plugins: [overlaySnapshotterPlugin] });
    try {
      expect(t.host.list().find((r) => r.uri === URI)).toMatchObject({ status: 'skip' });
      expect(existsSync(join(t.server.root, URI, 'snapshots'))).toBe(false);
    } finally {
      await t.close();
    }
  });
});
