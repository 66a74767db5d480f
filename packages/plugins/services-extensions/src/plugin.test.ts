import { ServiceNames } from '@berth/api';
import { containersToken, eventPublisherToken, eventSubscriberToken, exchangePlugin, extensionSchemasToken, isPluginManifest, PluginKind, pluginUri, rpcServicesPoint } from '@berth/core';
import { createTestHost, override, rpcService } from '@berth/core/testing';
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
    });
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
