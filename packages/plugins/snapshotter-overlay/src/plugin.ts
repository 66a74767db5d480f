import { mkdir } from 'node:fs/promises';
import { PluginKind, SkipPluginError, coreTokens, definePlugin, hostPlatform, rawSnapshotterToken } from '@berth/core';
import { overlayConfigDefaults, overlayConfigSchema, type OverlayConfig } from './config.js';
import { OverlaySnapshotter } from './overlay-snapshotter.js';
import { UNAVAILABLE_FSTYPE, probeOverlay } from './probe.js';
import { PACKAGE_VERSION } from './version.js';

export const overlaySnapshotterPlugin = definePlugin({
  type: PluginKind.Snapshotter, // URI: io.containerd.snapshotter.v1.overlayfs
  id: 'overlayfs',
  version: PACKAGE_VERSION,
  pluginApi: '^2.0.0',
  description: 'overlayfs snapshots: one upperdir per layer, stacked as lowerdirs',
  provides: rawSnapshotterToken,
  requires: { dirs: coreTokens.dirs, log: coreTokens.logger },
  config: { schema: overlayConfigSchema, defaults: overlayConfigDefaults },
  async init({ dirs, log }, config: OverlayConfig, ctx) {
    // Set before the probe, as containerd does: a skipped overlayfs still lists its platform.
    ctx.meta.platforms.push(hostPlatform());
    const root = config.root_path ?? dirs.root;
    await mkdir(root, { recursive: true, mode: 0o700 });
    const simulated = config.simulate_unavailable === true;
    const probe = await probeOverlay(root, config.mount_options ?? [], log, simulated ? { fstype: UNAVAILABLE_FSTYPE } : {});
    if (!probe.ok) {
      const why = simulated ? ' (simulate_unavailable is set)' : '';
      throw new SkipPluginError(`overlayfs is not usable in ${root}: ${probe.reason}${why}`);
    }
    const snapshotter = await OverlaySnapshotter.open({ root, log, mountOptions: probe.options, upperdirLabel: config.upperdir_label });
    ctx.meta.exports.root = root;
    return snapshotter;
  },
});

export default overlaySnapshotterPlugin;
