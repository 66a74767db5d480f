import { ServiceNames } from '@berth/api';
import { containersToken, coreTokens, eventPublisherToken, exchangePlugin, isPluginManifest, PluginKind, pluginUri, rpcServicesPoint } from '@berth/core';
import { createTestHost } from '@berth/core/testing';
import contentLocalPlugin from '@berth/plugin-content-local';
import metadataLmdbPlugin from '@berth/plugin-metadata-lmdb';
import { describe, expect, it } from 'vitest';
import containersServiceDefault, { containersServicePlugin } from './index.js';
import { PACKAGE_VERSION } from './version.js';

describe('containersServicePlugin', () => {
  it('is io.containerd.grpc.v1.containers, requiring the container store and the event publisher', () => {
    expect(isPluginManifest(containersServicePlugin)).toBe(true);
    expect(containersServiceDefault).toBe(containersServicePlugin);
    expect(pluginUri(containersServicePlugin)).toBe('io.containerd.grpc.v1.containers');
    expect(containersServicePlugin.type).toBe(PluginKind.GRPC);
    expect(containersServicePlugin.version).toBe(PACKAGE_VERSION);
    expect(containersServicePlugin.provides).toBe(rpcServicesPoint);
    expect(containersServicePlugin.requires).toEqual({ containers: containersToken, events: eventPublisherToken, log: coreTokens.logger });
  });

  it('boots over the metadata plugin and serves every Containers method', async () => {
    const host = await createTestHost({ plugins: [contentLocalPlugin, metadataLmdbPlugin, exchangePlugin, containersServicePlugin] });
    try {
      const service = [...host.host.all(rpcServicesPoint).values()].flatMap((s) => s.services).find((s) => s.service === ServiceNames.Containers);
      expect(Object.keys(service?.handlers ?? {}).sort()).toEqual(['Create', 'Delete', 'Get', 'List', 'ListStream', 'Update']);
    } finally {
      await host.close();
    }
  });
});
