import { ServiceNames } from '@berth/api';
import { eventPublisherToken, exchangePlugin, gcToken, imagesToken, isPluginManifest, PluginKind, pluginUri, rpcServicesPoint } from '@berth/core';
import { createTestHost } from '@berth/core/testing';
import contentLocalPlugin from '@berth/plugin-content-local';
import metadataLmdbPlugin from '@berth/plugin-metadata-lmdb';
import { describe, expect, it } from 'vitest';
import imagesServiceDefault, { imagesServicePlugin } from './index.js';
import { PACKAGE_VERSION } from './version.js';

describe('imagesServicePlugin', () => {
  it('is io.containerd.grpc.v1.images, requiring the image store, the event publisher and, optionally, the GC scheduler', () => {
    expect(isPluginManifest(imagesServicePlugin)).toBe(true);
    expect(imagesServiceDefault).toBe(imagesServicePlugin);
    expect(pluginUri(imagesServicePlugin)).toBe('io.containerd.grpc.v1.images');
    expect(imagesServicePlugin.type).toBe(PluginKind.GRPC);
    expect(imagesServicePlugin.version).toBe(PACKAGE_VERSION);
    expect(imagesServicePlugin.provides).toBe(rpcServicesPoint);
    expect(imagesServicePlugin.requires).toEqual({ images: imagesToken, events: eventPublisherToken, gc: gcToken.optional });
  });

  it('boots over the metadata plugin and serves every Images method', async () => {
    const host = await createTestHost({ plugins: [contentLocalPlugin, metadataLmdbPlugin, exchangePlugin, imagesServicePlugin] });
    try {
      const images = [...host.host.all(rpcServicesPoint).values()].flatMap((s) => s.services).find((s) => s.service === ServiceNames.Images);
      expect(Object.keys(images?.handlers ?? {}).sort()).toEqual(['Create', 'Delete', 'Get', 'List', 'Update']);
    } finally {
      await host.close();
    }
  });
});
