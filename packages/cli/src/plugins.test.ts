import { PassThrough, Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { BerthClient, ContentStoreProxy, ImageStoreProxy, clientToken } from '@berth/client';
import { contentStoreToken, imagesToken, isUnavailable, PLUGIN_API_VERSION } from '@berth/core';
import { createTestHost, override, type TestHost } from '@berth/core/testing';
import { CliContext, resolveGlobalOptions } from './context.js';
import { cliPlugins, contentProxyPlugin, imagesProxyPlugin } from './plugins.js';
import { PACKAGE_VERSION } from './version.js';

describe('contentProxyPlugin', () => {
  let test: TestHost | undefined;
  let client: BerthClient | undefined;
  afterEach(async () => {
    await test?.close();
    client?.close();
    test = client = undefined;
  });

  it('is in the CLI composition as io.containerd.content.v1.proxy', () => {
    expect(cliPlugins).toContain(contentProxyPlugin);
    expect(`${contentProxyPlugin.type}.${contentProxyPlugin.id}`).toBe('io.containerd.content.v1.proxy');
    expect(contentProxyPlugin.version).toBe(PACKAGE_VERSION);
    expect(contentProxyPlugin.provides).toBe(contentStoreToken);
  });

  it('provides a ContentStoreProxy over the client it is given, initialising lazily', async () => {
    client = new BerthClient({ address: '/nonexistent/berth.sock' });
    test = await createTestHost({ plugins: cliPlugins, overrides: [override(clientToken, client)], lazy: true });
    expect(test.host.list().find((p) => p.id === 'proxy')?.status).toBe('pending');
    const store = await test.host.resolve(contentStoreToken);
    expect(store).toBeInstanceOf(ContentStoreProxy);
    expect(await test.host.resolve(contentStoreToken)).toBe(store);
    expect(test.host.list().find((p) => p.id === 'proxy')).toMatchObject({ status: 'ok', version: PACKAGE_VERSION });
    // It really talks to the client's address.
    await expect(store.info({ namespace: 'default' }, `sha256:${'a'.repeat(64)}`)).rejects.toSatisfy(isUnavailable);
  });

  it('fails to load without a client', async () => {
    test = await createTestHost({ plugins: cliPlugins, lazy: true });
    await expect(test.host.resolve(contentStoreToken)).rejects.toThrow();
    const record = test.host.list().find((p) => p.id === 'proxy');
    expect(record?.status).toBe('error');
    expect(record?.error?.message).toContain('berth-client');
  });

  it('passes the API gate of this core', async () => {
    test = await createTestHost({ plugins: cliPlugins, overrides: [override(clientToken, new BerthClient({ address: '/x' }))], lazy: true, pluginApiVersion: PLUGIN_API_VERSION });
    expect(test.host.list().find((p) => p.id === 'proxy')?.status).toBe('pending');
  });
});

describe('imagesProxyPlugin', () => {
  it('is in the CLI composition as io.containerd.service.v1.images, an ImageStoreProxy over the client', async () => {
    expect(cliPlugins).toContain(imagesProxyPlugin);
    expect(`${imagesProxyPlugin.type}.${imagesProxyPlugin.id}`).toBe('io.containerd.service.v1.images');
    expect(imagesProxyPlugin.provides).toBe(imagesToken);
    const client = new BerthClient({ address: '/nonexistent/berth.sock' });
    const test = await createTestHost({ plugins: cliPlugins, overrides: [override(clientToken, client)], lazy: true });
    try {
      const images = await test.host.resolve(imagesToken);
      expect(images).toBeInstanceOf(ImageStoreProxy);
      // Only the closure of imagesToken was initialised.
      expect(test.host.list().find((p) => p.id === 'proxy')?.status).toBe('pending');
      await expect(images.list({ namespace: 'default' })).rejects.toSatisfy(isUnavailable);
    } finally {
      await test.close();
      client.close();
    }
  });
});

describe('CliContext.resolve', () => {
  it('composes the plugins on first use with the client of the global options', async () => {
    const io = { stdin: Readable.from([]), stdout: new PassThrough(), stderr: new PassThrough() };
    const ctx = new CliContext(io);
    ctx.setGlobals(resolveGlobalOptions({ address: '/nonexistent/berth.sock', namespace: 'n1', lease: 'l1' }));
    try {
      expect(ctx.op).toEqual({ namespace: 'n1', lease: 'l1' });
      const store = await ctx.resolve(contentStoreToken);
      expect(store).toBeInstanceOf(ContentStoreProxy);
      expect(await ctx.resolve(contentStoreToken)).toBe(store);
      await expect(store.info(ctx.op, `sha256:${'b'.repeat(64)}`)).rejects.toSatisfy(isUnavailable);
    } finally {
      await ctx.close();
    }
  });
});

describe('the roles berth pull --local resolves', () => {
  let test: TestHost | undefined;
  let client: BerthClient | undefined;
  afterEach(async () => {
    await test?.close();
    client?.close();
    test = client = undefined;
  });

  it('come from proxies in the CLI composition, each over the client', async () => {
    const { ApplierProxy, LeaseManagerProxy, SnapshotterSetProxy, SnapshotterProxy } = await import('@berth/client');
    const { applierToken, leasesToken, snapshottersToken } = await import('@berth/core');
    const { applierProxyPlugin, leasesProxyPlugin, snapshottersProxyPlugin } = await import('./plugins.js');
    for (const p of [leasesProxyPlugin, snapshottersProxyPlugin, applierProxyPlugin]) expect(cliPlugins).toContain(p);
    client = new BerthClient({ address: '/nonexistent/berth.sock' });
    test = await createTestHost({ plugins: cliPlugins, overrides: [override(clientToken, client)], lazy: true });
    const leases = await test.host.resolve(leasesToken);
    expect(leases).toBeInstanceOf(LeaseManagerProxy);
    const snapshotters = await test.host.resolve(snapshottersToken);
    expect(snapshotters).toBeInstanceOf(SnapshotterSetProxy);
    expect(snapshotters.get('native')).toBeInstanceOf(SnapshotterProxy);
    expect(snapshotters.get('native')).toBe(snapshotters.get('native'));
    expect(await test.host.resolve(applierToken)).toBeInstanceOf(ApplierProxy);
    await expect(leases.list({ namespace: 'default' })).rejects.toSatisfy(isUnavailable);
  });
});

describe('containersProxyPlugin', () => {
  it('is in the CLI composition as io.containerd.service.v1.containers, a ContainersProxy over the client', async () => {
    const { ContainersProxy } = await import('@berth/client');
    const { containersToken } = await import('@berth/core');
    const { containersProxyPlugin } = await import('./plugins.js');
    expect(cliPlugins).toContain(containersProxyPlugin);
    expect(`${containersProxyPlugin.type}.${containersProxyPlugin.id}`).toBe('io.containerd.service.v1.containers');
    expect(containersProxyPlugin.provides).toBe(containersToken);
    const client = new BerthClient({ address: '/nonexistent/berth.sock' });
    const test = await createTestHost({ plugins: cliPlugins, overrides: [override(clientToken, client)], lazy: true });
    try {
      const containers = await test.host.resolve(containersToken);
      expect(containers).toBeInstanceOf(ContainersProxy);
      await expect(containers.list({ namespace: 'default' })).rejects.toSatisfy(isUnavailable);
    } finally {
      await test.close();
      client.close();
    }
  });
});
