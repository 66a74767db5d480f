import { ServiceNames } from '@berth/api';
import {
  contentStoreToken,
  exchangePlugin,
  isPluginManifest,
  PluginKind,
  pluginUri,
  rpcServicesPoint,
} from '@berth/core';
import { createTestHost } from '@berth/core/testing';
import contentLocalPlugin from '@berth/plugin-content-local';
import metadataLmdbPlugin from '@berth/plugin-metadata-lmdb';
import { describe, expect, it } from 'vitest';
import contentServiceDefault, { contentServicePlugin } from './index.js';
import { PACKAGE_VERSION } from './version.js';

describe('contentServicePlugin', () => {
  it('is io.containerd.grpc.v1.content, requiring the namespaced content store', () => {
    expect(isPluginManifest(contentServicePlugin)).toBe(true);
    expect(contentServiceDefault).toBe(contentServicePlugin);
    expect(pluginUri(contentServicePlugin)).toBe('io.containerd.grpc.v1.content');
    expect(contentServicePlugin.type).toBe(PluginKind.GRPC);
    expect(contentServicePlugin.version).toBe(PACKAGE_VERSION);
    expect(contentServicePlugin.provides).toBe(rpcServicesPoint);
    expect(contentServicePlugin.requires).toEqual({ content: contentStoreToken });
  });

  it('boots in a host and serves every Content method', async () => {
    const host = await createTestHost({ plugins: [contentLocalPlugin, metadataLmdbPlugin, exchangePlugin, contentServicePlugin] });
    try {
      const services = [...host.host.all(rpcServicesPoint).values()].flatMap((s) => s.services);
      const content = services.find((s) => s.service === ServiceNames.Content);
      expect(Object.keys(content?.handlers ?? {}).sort()).toEqual(
        ['Abort', 'Delete', 'Info', 'List', 'ListStatuses', 'Read', 'Status', 'Update', 'Write'].sort(),
      );
      expect(content?.transports).toBeUndefined();
    } finally {
      await host.close();
    }
  });
});
