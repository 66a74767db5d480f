import {
  applierToken,
  contentStoreToken,
  coreTokens,
  definePlugin,
  imagesToken,
  leasesToken,
  PluginKind,
  rpcServicesPoint,
  snapshottersToken,
  streamManagerToken,
} from '@berth/core';
import { pull } from '@berth/images';
import { createResolver } from '@berth/registry';
import { TransferService } from './transfer-service.js';
import { PACKAGE_VERSION } from './version.js';

/** containerd 2's containerd.services.transfer.v1.Transfer: daemon-side pulls (a registry into the image store). */
export const transferServicePlugin = definePlugin({
  type: PluginKind.GRPC,
  id: 'transfer',
  version: PACKAGE_VERSION,
  pluginApi: '^2.0.0',
  provides: rpcServicesPoint,
  requires: {
    streams: streamManagerToken,
    content: contentStoreToken,
    images: imagesToken,
    leases: leasesToken,
    snapshotters: snapshottersToken,
    applier: applierToken,
    log: coreTokens.logger,
    metrics: coreTokens.metrics,
  },
  init: ({ streams, log, metrics, ...services }) => new TransferService({ streams, services, pull, createResolver, log, metrics }),
});
export default transferServicePlugin;
