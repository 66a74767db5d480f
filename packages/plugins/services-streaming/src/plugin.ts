import { definePlugin, PluginKind, rpcServicesPoint, streamManagerToken } from '@berth/core';
import { StreamingService } from './streaming-service.js';
import { PACKAGE_VERSION } from './version.js';

/** containerd.services.streaming.v1.Streaming: the streams Transfer sends progress on and asks for credentials. */
export const streamingServicePlugin = definePlugin({
  type: PluginKind.GRPC,
  id: 'streaming',
  version: PACKAGE_VERSION,
  pluginApi: '^2.0.0',
  provides: rpcServicesPoint,
  requires: { streams: streamManagerToken },
  init: ({ streams }) => new StreamingService(streams),
});
export default streamingServicePlugin;
