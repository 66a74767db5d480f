import { PluginKind } from '../kinds/plugin-kind.js';
import { streamManagerToken } from '../kinds/tokens.js';
import { definePlugin } from '../registry/manifest.js';
import { PACKAGE_VERSION } from '../version.js';
import { LocalStreamManager } from './manager.js';

/** io.containerd.streaming.v1.manager: the open streams that the Streaming service registers and Transfer uses. */
export const streamManagerPlugin = definePlugin({
  type: PluginKind.Streaming,
  id: 'manager',
  version: PACKAGE_VERSION,
  pluginApi: '^2.0.0',
  description: 'in-process registry of the streams clients open with containerd.services.streaming.v1',
  provides: streamManagerToken,
  requires: {},
  init: () => new LocalStreamManager(),
});
