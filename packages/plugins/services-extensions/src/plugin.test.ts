import { ServiceNames } from '@berth/api';
import { containersToken, coreTokens, eventPublisherToken, eventSubscriberToken, exchangePlugin, extensionSchemasToken, isPluginManifest, PluginKind, pluginUri, rpcServicesPoint } from '@berth/core';
import { createTestHost, expectFailure, override, rpcContext, rpcService } from '@berth/core/testing';
import contentLocalPlugin from '@berth/plugin-content-local';
import metadataLmdbPlugin from '@berth/plugin-metadata-lmdb';
import { extensionsJsonPlugin } from '@berth/plugin-extensions-json';
import { describe, expect, it } from 'vitest';
import extensionsServiceDefault, { extensionsServicePlugin } from './index.js';
import { MemoryContainerStore } from './testing-fixtures/memory-containers.js';
import { PACKAGE_VERSION } from './version.js';

describe('extensionsServicePlugin', () => {
  it('is io.containerd.grpc.v1.extensions over the containers store, the schema registry and the events', () => {
    expect(isPluginManifest(extensionsServicePlugin)).toBe(true);
    expect(extensionsServiceDefault).toBe(extensionsServicePlugin);
    expect(pluginUri(extensionsServicePlugin)).toBe('io.containerd.grpc.v1.extensions');
    expect(extensionsServicePlugin.type).toBe(PluginKind.GRPC);
    expect(extensionsServicePlugin.version).toBe(PACKAGE_VERSION);
    expect(extensionsServicePlugin.provides).toBe(rpcServicesPoint);
    expect(extensionsServicePlugin.requires).toEqual({
      containers: containersToken,
      schemas: extensionSchemasToken,
      events: eventPublisherToken,
      subscriber: eventSubscriberToken.optional,
      log: coreTokens.logger,
    });
  });

  it('works over the real metadata store: a patch is validated and revisioned in the store’s transaction', async () => {
    const host = await createTestHost({
      plugins: [contentLocalPlugin, extensionsJsonPlugin, metadataLmdbPlugin, exchangePlugin, extensionsServicePlugin],
      required: ['io.containerd.grpc.v1.extensions'],
    });
    try {
      const ctx = rpcContext({ namespace: 'default' });
      const schemas = rpcService(host.host, ServiceNames.ExtensionSchemas).handlers;
      const ext = rpcService(host.host, ServiceNames.Extensions).handlers;
      await schemas.Register!({ name: 'acme.io/o', schema: '{"type":"object","properties":{"n":{"type":"integer"}}}', indexed_paths: ['n'], force: false }, ctx);
      await host.host.get(containersToken).create({ namespace: 'default', signal: ctx.signal }, {
        id: 'c1',
        runtime: { name: 'io.containerd.runc.v2' },
        spec: { typeUrl: 'types.containerd.io/opencontainers/runtime-spec/1/Spec', value: Buffer.from('{}') },
      });
      const patch = (p: string, rev: number | null) => ext.Patch!({ container_id: 'c1', name: 'acme.io/o', patch: p, expected_revision: rev === null ? null : { value: rev } }, ctx);
      expect((await patch('{"n":1}', 0)).extension.revision).toBe(1);
      await expectFailure(patch('{"n":"x"}', 1), 'invalid-argument', '/n: must be integer');
      await expectFailure(patch('{"n":2}', 0), 'failed-precondition');
      expect((await patch('{"n":2,"m":true}', 1)).extension.revision).toBe(2);
      const found = await ext.Query!({ where: ['ext."acme.io/o".n==2'] }, ctx);
      expect(found.containers.map((c: { id: string }) => c.id)).toEqual(['c1']);
    } finally {
      await host.close();
    }
  });

  it('boots beside the json extensions plugin and serves both services with every method', async () => {
    const host = await createTestHost({
      plugins: [extensionsJsonPlugin, exchangePlugin, extensionsServicePlugin],
      overrides: [override(containersToken, new MemoryContainerStore())],
      required: ['io.containerd.grpc.v1.extensions'],
    });
    try {
      expect(Object.keys(rpcService(host.host, ServiceNames.ExtensionSchemas).handlers).sort()).toEqual(['Delete', 'Get', 'List', 'Register']);
      expect(Object.keys(rpcService(host.host, ServiceNames.Extensions).handlers).sort()).toEqual(['Delete', 'Get', 'Patch', 'Query', 'Set', 'Watch']);
    } finally {
      await host.close();
    }
  });
});
