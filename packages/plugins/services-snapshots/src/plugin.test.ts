import { ServiceNames } from '@berth/api';
import { isPluginManifest, PluginKind, pluginUri, rpcServicesPoint, snapshottersToken } from '@berth/core';
import { describe, expect, it } from 'vitest';
import snapshotsServiceDefault, { snapshotsServicePlugin } from './index.js';
import { PACKAGE_VERSION } from './version.js';
import { bootSnapshots } from './testing-fixtures/host.js';

describe('snapshotsServicePlugin', () => {
  it('is io.containerd.grpc.v1.snapshots, requiring the namespaced snapshotters', () => {
    expect(isPluginManifest(snapshotsServicePlugin)).toBe(true);
    expect(snapshotsServiceDefault).toBe(snapshotsServicePlugin);
    expect(pluginUri(snapshotsServicePlugin)).toBe('io.containerd.grpc.v1.snapshots');
    expect(snapshotsServicePlugin.type).toBe(PluginKind.GRPC);
    expect(snapshotsServicePlugin.version).toBe(PACKAGE_VERSION);
    expect(snapshotsServicePlugin.provides).toBe(rpcServicesPoint);
    expect(snapshotsServicePlugin.requires).toEqual({ snapshotters: snapshottersToken });
  });

  it('boots over the metadata plugin and serves every Snapshots method', async () => {
    const { host, handlers } = await bootSnapshots();
    try {
      expect(Object.keys(handlers).sort()).toEqual(
        ['Cleanup', 'Commit', 'List', 'Mounts', 'Prepare', 'Remove', 'Stat', 'Update', 'Usage', 'View'].sort(),
      );
      expect(host.host.list().find((r) => r.uri === 'io.containerd.grpc.v1.snapshots')?.status).toBe('ok');
      expect(ServiceNames.Snapshots).toBe('containerd.services.snapshots.v1.Snapshots');
    } finally {
      await host.close();
    }
  });
});
