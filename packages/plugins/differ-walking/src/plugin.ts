import {
  contentIngesterToken,
  contentManagerToken,
  contentProviderToken,
  coreTokens,
  definePlugin,
  differToken,
  hostPlatform,
  ingestManagerToken,
  PluginKind,
} from '@berth/core';
import { differWalkingConfigDefaults, differWalkingConfigSchema, type DifferWalkingConfig } from './config.js';
import { openWalkingDiffer } from './open.js';
import { PACKAGE_VERSION } from './version.js';

/** io.containerd.differ.v1.walking: applies layers onto mounts and writes diffs, in worker threads. */
export const differWalkingPlugin = definePlugin({
  type: PluginKind.Differ, // URI: io.containerd.differ.v1.walking
  id: 'walking',
  version: PACKAGE_VERSION,
  pluginApi: '^2.0.0',
  description: 'applies OCI layers (tar, gzip, zstd) onto mounts and computes diffs',
  provides: differToken,
  requires: {
    provider: contentProviderToken,
    ingester: contentIngesterToken,
    manager: contentManagerToken,
    ingests: ingestManagerToken,
    dirs: coreTokens.dirs,
    log: coreTokens.logger,
  },
  config: { schema: differWalkingConfigSchema, defaults: differWalkingConfigDefaults },
  async init({ provider, ingester, manager, ingests, dirs, log }, config: DifferWalkingConfig, ctx) {
    const differ = await openWalkingDiffer({ content: { provider, ingester, manager, ingests }, root: dirs.root, log, config });
    ctx.meta.platforms.push(hostPlatform());
    ctx.meta.exports.decompressors = differ.describe();
    return differ;
  },
});
export default differWalkingPlugin;
