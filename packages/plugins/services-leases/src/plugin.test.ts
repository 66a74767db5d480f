import { ServiceNames } from '@berth/api';
import { collectableToken, gcToken, isPluginManifest, leasesToken, PluginKind, pluginUri, rpcServicesPoint } from '@berth/core';
import { createTestHost } from '@berth/core/testing';
import contentLocalPlugin from '@berth/plugin-content-local';
import metadataLmdbPlugin from '@berth/plugin-metadata-lmdb';
import { describe, expect, it } from 'vitest';
import leasesServiceDefault, { leasesServicePlugin } from './index.js';
import { PACKAGE_VERSION } from './version.js';

describe('leasesServicePlugin', () => {
  it('is io.containerd.grpc.v1.leases, requiring the metadata store and, optionally, the GC scheduler', () => {
    expect(isPluginManifest(leasesServicePlugin)).toBe(true);
    expect(leasesServiceDefault).toBe(leasesServicePlugin);
    expect(pluginUri(leasesServicePlugin)).toBe('io.containerd.grpc.v1.leases');
    expect(leasesServicePlugin.type).toBe(PluginKind.GRPC);
    expect(leasesServicePlugin.version).toBe(PACKAGE_VERSION);
    expect(leasesServicePlugin.provides).toBe(rpcServicesPoint);
    expect(leasesServicePlugin.requires).toEqual({ leases: leasesToken, gc: gcToken.optional, collectable: collectableToken.optional });
  });

  it('boots without a GC scheduler and serves every Leases method', async () => {
    const host = await createTestHost({ plugins: [contentLocalPlugin, metadataLmdbPlugin, leasesServicePlugin] });
    try {
      const leases = [...host.host.all(rpcServicesPoint).values()].flatMap((s) => s.services).find((s) => s.service === ServiceNames.Leases);
      expect(Object.keys(leases?.handlers ?? {}).sort()).toEqual(
        ['AddResource', 'Create', 'Delete', 'DeleteResource', 'List', 'ListResources'].sort(),
      );
    } finally {
      await host.close();
    }
  });
});
