import { PluginKind, coreTokens, definePlugin, hostPlatform, rawSnapshotterToken } from '@berth/core';
import { nativeSnapshotterConfigDefaults, nativeSnapshotterConfigSchema, type NativeSnapshotterConfig } from './config.js';
import { NativeSnapshotter } from './native-snapshotter.js';
import { PACKAGE_VERSION } from './version.js';

export const snapshotterNativePlugin = definePlugin({
  type: PluginKind.Snapshotter, // URI: io.containerd.snapshotter.v1.native
  id: 'native',
  version: PACKAGE_VERSION,
  pluginApi: '^2.0.0',
  description: 'copy-based snapshotter: each active snapshot a full copy of its parent, bind-mounted',
  provides: rawSnapshotterToken,
  requires: { dirs: coreTokens.dirs, log: coreTokens.logger },
  config: { schema: nativeSnapshotterConfigSchema, defaults: nativeSnapshotterConfigDefaults },
  async init({ dirs, log }, config: NativeSnapshotterConfig, ctx) {
    const snapshotter = await NativeSnapshotter.open({ root: config.root_path ?? dirs.root, log });
    ctx.meta.exports.root = snapshotter.root;
    ctx.meta.platforms.push(hostPlatform());
    return snapshotter;
  },
});

export default snapshotterNativePlugin;
