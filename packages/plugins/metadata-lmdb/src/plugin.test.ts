import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  collectableToken,
  containerExtensionsPoint,
  containersToken,
  contentStoreToken,
  isInvalidArgument,
  OCI_SPEC_TYPE_URL,
  coreTokens,
  eventPublisherToken,
  eventsToken,
  exchangePlugin,
  imagesToken,
  leasesToken,
  metricsCollectorsPoint,
  namespacesToken,
  PluginKind,
  rawContentStoreToken,
  rawSnapshotterToken,
  snapshottersToken,
  definePlugin,
  type Envelope,
} from '@berth/core';
import { createMemoryContentStore, createTestHost, override, type TestHost } from '@berth/core/testing';
import { lmdbPlugin } from './plugin.js';
import { putBlob } from './testing-fixtures/harness.js';
import { json, TestJsonPolicy } from './testing-fixtures/json-policy.js';
import { MemorySnapshotter } from '@berth/core/testing';

/** Two snapshotter plugins of the test's own, so that the store gets them by id as it gets overlayfs and native. */
const memSnapshotter = (id: string, raw: MemorySnapshotter) =>
  definePlugin({ type: PluginKind.Snapshotter, id, version: '0.0.0', pluginApi: '^2.0.0', provides: rawSnapshotterToken, init: () => raw });

const URI = 'io.containerd.metadata.v1.lmdb';

describe('lmdb metadata plugin', () => {
  let host: TestHost | undefined;
  afterEach(async () => {
    await host?.close();
    host = undefined;
  });

  const boot = async (pluginConfig?: Record<string, unknown>): Promise<TestHost> =>
    (host = await createTestHost({
      plugins: [lmdbPlugin, exchangePlugin],
      overrides: [override(rawContentStoreToken, createMemoryContentStore('raw'))],
      ...(pluginConfig ? { pluginConfig } : {}),
    }));

  it('declares its identity and wiring', () => {
    expect(lmdbPlugin.type).toBe(PluginKind.Metadata);
    expect(lmdbPlugin.id).toBe('lmdb');
    expect(lmdbPlugin.provides).toEqual({
      namespaces: namespacesToken,
      content: contentStoreToken,
      snapshotters: snapshottersToken,
      leases: leasesToken,
      images: imagesToken,
      containers: containersToken,
      collectable: collectableToken,
      metrics: metricsCollectorsPoint,
    });
    expect(lmdbPlugin.requires).toEqual({
      raw: rawContentStoreToken,
      rawSnapshotters: rawSnapshotterToken.all,
      dirs: coreTokens.dirs,
      log: coreTokens.logger,
      events: eventPublisherToken.optional,
      extensionPolicies: containerExtensionsPoint,
    });
  });

  it('applies the extension policies other plugins contribute, and stores extensions untouched with none', async () => {
    const policy = new TestJsonPolicy({ 'acme.io/x': ['team'] });
    const contributor = definePlugin({ type: 'io.berth.extensions.v1', id: 'test', version: '0.0.0', pluginApi: '^2.0.0', provides: containerExtensionsPoint, init: () => policy });
    host = await createTestHost({ plugins: [contributor, lmdbPlugin], overrides: [override(rawContentStoreToken, createMemoryContentStore('raw'))] });
    const containers = host.host.get(containersToken);
    const ctx = { namespace: 'default' };
    const base = { id: 'c', runtime: { name: 'io.containerd.runc.v2' }, spec: { typeUrl: OCI_SPEC_TYPE_URL, value: Buffer.from('{}') } };
    await expect(containers.create(ctx, { ...base, extensions: { 'acme.io/x': json('acme.io/x', { invalid: true }) } })).rejects.toSatisfy(isInvalidArgument);
    await containers.create(ctx, { ...base, extensions: { 'acme.io/x': json('acme.io/x', { team: 't' }) } });
    expect((await containers.list(ctx, ['extensions."acme.io/x".team==t'])).map((c) => c.id)).toEqual(['c']);
    await host.close();

    host = await boot();
    const plain = host.host.get(containersToken);
    await plain.create(ctx, { ...base, extensions: { 'acme.io/x': json('acme.io/x', { invalid: true }) } });
    await expect(plain.list(ctx, ['extensions."acme.io/x".team==t'])).rejects.toThrow('is not indexed');
  });

  it('boots in a host, exports path and policy, and serves the metadata store', async () => {
    const h = await boot();
    const record = h.host.list().find((r) => r.uri === URI);
    expect(record?.status).toBe('ok');
    const path = join(h.server.root, URI, 'meta.lmdb');
    expect(record?.exports).toEqual({ path, policy: 'shared' });
    expect((await stat(path)).isFile()).toBe(true);

    const content = h.host.get(contentStoreToken);
    expect(content.scope).toBe('namespaced');
    const digest = await putBlob(content, { namespace: 'default' }, 'via host');
    expect((await content.info({ namespace: 'default' }, digest)).size).toBe(8);
    expect(await h.host.get(namespacesToken).list()).toEqual(['default']);
    expect(h.host.get(collectableToken)).toBeDefined();
    expect(await h.host.get(leasesToken).list({ namespace: 'default' })).toEqual([]);
    expect(await h.host.get(imagesToken).list({ namespace: 'default' })).toEqual([]);
    const families = await h.host.all(metricsCollectorsPoint).get('lmdb')!.collect();
    expect(families.find((f) => f.name === 'berth_metadata_records')?.samples[0]!.value).toBeGreaterThan(0);
  });

  it('serves a namespaced snapshotter per snapshotter plugin, by id, and none when there are none', async () => {
    const a = new MemorySnapshotter();
    const b = new MemorySnapshotter();
    host = await createTestHost({
      plugins: [memSnapshotter('mem-a', a), lmdbPlugin, memSnapshotter('mem-b', b)],
      overrides: [override(rawContentStoreToken, createMemoryContentStore('raw'))],
    });
    const set = host.host.get(snapshottersToken);
    expect(set.names()).toEqual(['mem-a', 'mem-b']);
    await set.get('mem-b').prepare({ namespace: 'default' }, 'k', '');
    expect([...b.snapshots.keys()]).toEqual(['default/1/k']);
    expect(a.snapshots.size).toBe(0);
    expect(() => set.get('overlayfs')).toThrow('snapshotter overlayfs was not found');
    await host.close();
    host = await boot();
    expect(host.host.get(snapshottersToken).names()).toEqual([]);
  });

  it('publishes /content/delete whoever deletes a blob', async () => {
    const h = await boot();
    const abort = new AbortController();
    const seen: Envelope[] = [];
    const reading = (async () => {
      for await (const e of h.host.get(eventsToken).subscribe(['topic=="/content/delete"'], abort.signal)) seen.push(e);
    })();
    const content = h.host.get(contentStoreToken);
    const digest = await putBlob(content, { namespace: 'ns1' }, 'doomed');
    await content.delete({ namespace: 'ns1' }, digest);
    await new Promise((r) => setTimeout(r, 20));
    abort.abort();
    await reading.catch(() => undefined);
    expect(seen.map((e) => [e.namespace, e.topic, e.fields?.digest])).toEqual([['ns1', '/content/delete', digest]]);
    expect(seen[0]!.event.typeUrl).toBe('containerd.events.ContentDelete');
  });

  it('takes its config section', async () => {
    const h = await boot({ [URI]: { content_sharing_policy: 'isolated', ingest_expiry_seconds: 60, map_size: 16 * 1024 * 1024 } });
    expect(h.host.list().find((r) => r.uri === URI)?.exports.policy).toBe('isolated');
    // Isolated: a blob the backend already has is not linked by digest.
    const content = h.host.get(contentStoreToken);
    const digest = await putBlob(content, { namespace: 'a' }, 'isolated');
    const w = await content.writer({ namespace: 'b' }, { ref: 'r', expected: digest });
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
