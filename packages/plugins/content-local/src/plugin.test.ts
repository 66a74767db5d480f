import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rawContentStoreToken, isPluginManifest, pluginUri, PluginKind, sha256Hex } from '@berth/core';
import { createTestHost } from '@berth/core/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { contentLocalConfigSchema } from './config.js';
import { LocalContentStore } from './local-content-store.js';
import contentLocalDefault, { contentLocalPlugin } from './index.js';
import { PACKAGE_VERSION } from './version.js';

const URI = 'io.containerd.content.v1.content';
const ctx = { namespace: 'default' };

describe('contentLocalPlugin', () => {
  const dirs: string[] = [];
  afterEach(async () => {
    for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
  });

  it('is a manifest for io.containerd.content.v1.content providing the content store', () => {
    expect(isPluginManifest(contentLocalPlugin)).toBe(true);
    expect(contentLocalDefault).toBe(contentLocalPlugin);
    expect(pluginUri(contentLocalPlugin)).toBe(URI);
    expect(contentLocalPlugin.type).toBe(PluginKind.Content);
    expect(contentLocalPlugin.version).toBe(PACKAGE_VERSION);
    expect(contentLocalPlugin.provides).toBe(rawContentStoreToken);
    expect(contentLocalConfigSchema.$id).toBe(URI);
    expect(contentLocalConfigSchema.additionalProperties).toBe(false);
  });

  it('boots in a host, stores blobs under its plugin root and exports it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'berth-content-plugin-'));
    dirs.push(dir);
    const t = await createTestHost({ plugins: [contentLocalPlugin], required: [URI], dir });
    const store = t.host.get(rawContentStoreToken);
    expect(store).toBeInstanceOf(LocalContentStore);
    const root = join(t.server.root, URI);
    const record = t.host.list().find((r) => r.uri === URI);
    expect(record).toMatchObject({ status: 'ok', version: PACKAGE_VERSION, exports: { root } });

    const data = Buffer.from('hello from the plugin');
    const hex = sha256Hex(data);
    const w = await store.writer(ctx, { ref: 'plugin-test' });
    await w.write(data);
    await w.commit(data.length, `sha256:${hex}`);
    expect((await readFile(join(root, 'blobs', 'sha256', hex))).equals(data)).toBe(true);

    // Shutdown closes the store: an open writer's ingest survives for the next boot.
    const open = await store.writer(ctx, { ref: 'left-open' });
    await open.write(Buffer.from('abc'));
    await t.close();
    const again = await createTestHost({ plugins: [contentLocalPlugin], required: [URI], dir });
    expect((await again.host.get(rawContentStoreToken).status(ctx, 'left-open')).offset).toBe(3);
    await again.close();
  });

  it('uses root_path when configured', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'berth-content-plugin-'));
    dirs.push(dir);
    const custom = join(dir, 'elsewhere');
    const t = await createTestHost({ plugins: [contentLocalPlugin], required: [URI], pluginConfig: { [URI]: { root_path: custom } } });
    try {
      expect(t.host.list().find((r) => r.uri === URI)?.exports).toMatchObject({ root: custom });
      expect((t.host.get(rawContentStoreToken) as LocalContentStore).root).toBe(custom);
    } finally {
      await t.close();
    }
  });

  it('rejects unknown config keys', async () => {
    await expect(
      createTestHost({ plugins: [contentLocalPlugin], pluginConfig: { [URI]: { rootpath: '/x' } } }),
    ).rejects.toMatchObject({ code: 'BERTH_ERR_CONFIG_INVALID' });
  });
});
