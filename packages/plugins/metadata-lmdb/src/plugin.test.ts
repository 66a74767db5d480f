import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { contentStoreToken, metadataStoreToken, PluginKind } from '@berth/core';
import { createTestHost, type TestHost } from '@berth/core/testing';
import { lmdbPlugin } from './plugin.js';
import { FsContentStore } from './testing-fixtures/fs-content-store.js';
import { putBlob } from './testing-fixtures/harness.js';

const URI = 'io.containerd.metadata.v1.lmdb';

describe('lmdb metadata plugin', () => {
  let host: TestHost | undefined;
  let contentDir: string;

  beforeEach(async () => {
    contentDir = await mkdtemp(join(tmpdir(), 'berth-metadata-plugin-'));
  });
  afterEach(async () => {
    await host?.close();
    host = undefined;
    await rm(contentDir, { recursive: true, force: true });
  });

  const boot = async (pluginConfig?: Record<string, unknown>): Promise<TestHost> =>
    (host = await createTestHost({
      plugins: [lmdbPlugin],
      overrides: [[contentStoreToken, new FsContentStore(contentDir)]],
      ...(pluginConfig ? { pluginConfig } : {}),
    }));

  it('declares its identity and wiring', () => {
    expect(lmdbPlugin.type).toBe(PluginKind.Metadata);
    expect(lmdbPlugin.id).toBe('lmdb');
    expect(lmdbPlugin.provides).toBe(metadataStoreToken);
    expect(lmdbPlugin.requires).toEqual({ content: contentStoreToken });
  });

  it('boots in a host, exports path and policy, and serves the metadata store', async () => {
    const h = await boot();
    const record = h.host.list().find((r) => r.uri === URI);
    expect(record?.status).toBe('ok');
    const path = join(h.server.root, URI, 'meta.lmdb');
    expect(record?.exports).toEqual({ path, policy: 'shared' });
    expect((await stat(path)).isFile()).toBe(true);

    const store = h.host.get(metadataStoreToken);
    const digest = await putBlob(store.content, { namespace: 'default' }, 'via host');
    expect((await store.content.info({ namespace: 'default' }, digest)).size).toBe(8);
    expect(await store.namespaces.list()).toEqual(['default']);
  });

  it('takes its config section', async () => {
    const h = await boot({ [URI]: { content_sharing_policy: 'isolated', ingest_expiry_seconds: 60, map_size: 16 * 1024 * 1024 } });
    expect(h.host.list().find((r) => r.uri === URI)?.exports.policy).toBe('isolated');
    // Isolated: a blob the backend already has is not linked by digest.
    const store = h.host.get(metadataStoreToken);
    const digest = await putBlob(store.content, { namespace: 'a' }, 'isolated');
    const w = await store.content.writer({ namespace: 'b' }, { ref: 'r', expected: digest });
    expect((await w.status()).offset).toBe(0);
    await w.close();
  });

  it('rejects unknown config keys and bad values before init', async () => {
    for (const section of [{ mapsize: 1 }, { content_sharing_policy: 'open' }, { ingest_expiry_seconds: 0 }]) {
      const err = await boot({ [URI]: section }).catch((e: unknown) => e);
      expect((err as { code?: string }).code, JSON.stringify(section)).toBe('BERTH_ERR_CONFIG_INVALID');
      expect(String(err)).toContain(URI);
    }
  });
});
