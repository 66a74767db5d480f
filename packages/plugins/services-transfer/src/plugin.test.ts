import {
  applierToken,
  contentStoreToken,
  coreTokens,
  imagesToken,
  isPluginManifest,
  leasesToken,
  PluginKind,
  pluginUri,
  rpcServicesPoint,
  snapshottersToken,
  streamManagerToken,
} from '@berth/core';
import { describe, expect, it } from 'vitest';
import transferDefault, { transferServicePlugin } from './index.js';
import { PACKAGE_VERSION } from './version.js';

describe('transferServicePlugin', () => {
  it('is io.containerd.grpc.v1.transfer, requiring the streams and what a pull works with', () => {
    expect(isPluginManifest(transferServicePlugin)).toBe(true);
    expect(transferDefault).toBe(transferServicePlugin);
    expect(pluginUri(transferServicePlugin)).toBe('io.containerd.grpc.v1.transfer');
    expect(transferServicePlugin.type).toBe(PluginKind.GRPC);
    expect(transferServicePlugin.version).toBe(PACKAGE_VERSION);
    expect(transferServicePlugin.provides).toBe(rpcServicesPoint);
    expect(transferServicePlugin.requires).toEqual({
      streams: streamManagerToken,
      content: contentStoreToken,
      images: imagesToken,
      leases: leasesToken,
      snapshotters: snapshottersToken,
      applier: applierToken,
      log: coreTokens.logger,
      metrics: coreTokens.metrics,
    });
  });
});
