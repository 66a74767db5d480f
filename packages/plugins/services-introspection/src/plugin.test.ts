import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { coreTokens, definePlugin, errdefOf, PLUGIN_API_VERSION, rpcServicesPoint, SkipPluginError, wireMessageOf, type RpcContext, type RpcServiceImplementation } from '@berth/core';
import { createTestHost, mountTmpfs, tmpfsUnavailable, type Tmpfs } from '@berth/core/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { introspectionServicePlugin } from './plugin.js';

const ctx: RpcContext = { metadata: {}, signal: new AbortController().signal };
const skipping = definePlugin({
  type: 'io.berth.test.v1',
  id: 'skipper',
  version: '2.0.0',
  pluginApi: '^2.0.0',
  platforms: [{ os: 'linux', architecture: 'amd64' }],
  init: () => {
    throw new SkipPluginError('not on this host');
  },
});

function service(t: Awaited<ReturnType<typeof createTestHost>>): RpcServiceImplementation {
  return [...t.host.all(rpcServicesPoint).values()][0]!.services[0]!;
}

describe('services-introspection', () => {
  it('lists plugins with versions, platforms and init errors, and filters them', async () => {
    const t = await createTestHost({ plugins: [introspectionServicePlugin, skipping] });
    try {
      const { plugins } = await service(t).handlers.Plugins!({ filters: [] }, ctx);
      expect(plugins).toEqual([
        expect.objectContaining({ type: 'io.containerd.grpc.v1', id: 'introspection', init_err: null,
          // What `berth plugin install` checks a package against: the plugin API berthd runs, and its root.
          exports: { 'berth.version': '0.1.0', 'berth.contributes': 'rpc.services', 'berth.plugin_api': PLUGIN_API_VERSION, 'berth.root': t.host.get(coreTokens.server).root } }),
        expect.objectContaining({
          id: 'skipper',
          platforms: [{ os: 'linux', architecture: 'amd64', variant: '' }],
          init_err: { code: 2, message: 'not on this host: skip plugin' },
          exports: { 'berth.version': '2.0.0' },
        }),
      ]);
      const filtered = await service(t).handlers.Plugins!({ filters: ['id==skipper'] }, ctx);
      expect(filtered.plugins.map((p: { id: string }) => p.id)).toEqual(['skipper']);
      const byPlatform = await service(t).handlers.Plugins!({ filters: ['platforms~=linux'] }, ctx);
      expect(byPlatform.plugins.map((p: { id: string }) => p.id)).toEqual(['skipper']);
    } finally {
      await t.close();
    }
  });

  it('persists the server UUID in its root dir', async () => {
    const t = await createTestHost({ plugins: [introspectionServicePlugin] });
    const { uuid } = await service(t).handlers.Server!({}, ctx);
    const dir = t.dir;
    expect(uuid).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(await readFile(join(t.server.root, 'io.containerd.grpc.v1.introspection', 'uuid'), 'utf8')).toBe(uuid);
    await t.host.close();
    const again = await createTestHost({ plugins: [introspectionServicePlugin], dir });
    try {
      expect((await service(again).handlers.Server!({}, ctx)).uuid).toBe(uuid);
    } finally {
      await again.close();
      await (await import('node:fs/promises')).rm(dir, { recursive: true, force: true });
    }
  });

  describe.skipIf(tmpfsUnavailable() !== undefined)('on a full disk', () => {
    let fs: Tmpfs | undefined;
    afterEach(async () => {
      await fs?.dispose();
      fs = undefined;
    });

    it('starts without a UUID, answers Server with the disk error, and creates the UUID once there is space', async () => {
      fs = await mountTmpfs(1 << 20);
      await fs.fill();
      const t = await createTestHost({ plugins: [introspectionServicePlugin], dir: fs.path });
      try {
        expect(t.host.list().find((p) => p.id === 'introspection')?.status).toBe('ok');
        const file = join(t.server.root, 'io.containerd.grpc.v1.introspection', 'uuid');
        const err = await Promise.resolve(service(t).handlers.Server!({}, ctx)).catch((e: unknown) => e);
        expect(errdefOf(err)).toBe('unknown');
        expect(wireMessageOf(err)).toBe(`write ${file}: no space left on device`);
        await fs.unfill();
        const { uuid } = await service(t).handlers.Server!({}, ctx);
        expect(await readFile(file, 'utf8')).toBe(uuid);
        expect((await service(t).handlers.Server!({}, ctx)).uuid).toBe(uuid);
      } finally {
        await t.close();
      }
    });
  });
});
