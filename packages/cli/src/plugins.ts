// The CLI's composition of client-side plugins (STYLE §3, §7): the daemon composes its plugins eagerly, the CLI
// resolves only the closure a command needs, on first use (CliContext.resolve). The client itself is not a plugin:
// the CLI makes it from the global options and provides it under clientToken.
import { ApplierProxy, ContainersProxy, ContentStoreProxy, ImageStoreProxy, LeaseManagerProxy, SnapshotterSetProxy, clientToken } from '@berth/client';
import { applierToken, containersToken, contentStoreToken, definePlugin, imagesToken, leasesToken, PluginKind, snapshottersToken, type AnyPluginManifest } from '@berth/core';
import { PACKAGE_VERSION } from './version.js';

/** io.containerd.content.v1.proxy: the ContentStore interface over berthd's Content service. */
export const contentProxyPlugin = definePlugin({
  type: PluginKind.Content,
  id: 'proxy',
  version: PACKAGE_VERSION,
  pluginApi: '^2.0.0',
  provides: contentStoreToken,
  requires: { client: clientToken },
  init: ({ client }) => new ContentStoreProxy(client),
});

/**
 * io.containerd.service.v1.images: the ImageStore interface over berthd's Images service (the kind containerd gives
 * its in-process image store, `images-service`, that clients use instead of the gRPC one).
 */
export const imagesProxyPlugin = definePlugin({
  type: PluginKind.Service,
  id: 'images',
  version: PACKAGE_VERSION,
  pluginApi: '^2.0.0',
  provides: imagesToken,
  requires: { client: clientToken },
  init: ({ client }) => new ImageStoreProxy(client),
});

/** io.containerd.service.v1.leases: the LeaseManager over berthd's Leases service (for `berth pull --local`). */
export const leasesProxyPlugin = definePlugin({
  type: PluginKind.Service,
  id: 'leases',
  version: PACKAGE_VERSION,
  pluginApi: '^2.0.0',
  provides: leasesToken,
  requires: { client: clientToken },
  init: ({ client }) => new LeaseManagerProxy(client),
});

/** io.containerd.service.v1.snapshots: berthd's snapshotters by name over its Snapshots service. */
export const snapshottersProxyPlugin = definePlugin({
  type: PluginKind.Service,
  id: 'snapshots',
  version: PACKAGE_VERSION,
  pluginApi: '^2.0.0',
  provides: snapshottersToken,
  requires: { client: clientToken },
  init: ({ client }) => new SnapshotterSetProxy(client),
});

/** io.containerd.service.v1.diff: layers applied by berthd's Diff service onto its snapshots' mounts. */
export const applierProxyPlugin = definePlugin({
  type: PluginKind.Service,
  id: 'diff',
  version: PACKAGE_VERSION,
  pluginApi: '^2.0.0',
  provides: applierToken,
  requires: { client: clientToken },
  init: ({ client }) => new ApplierProxy(client),
});

/**
 * io.containerd.service.v1.containers: the ContainerStore over berthd's Containers service, its extension operations
 * over berth's Extensions service.
 */
export const containersProxyPlugin = definePlugin({
  type: PluginKind.Service,
  id: 'containers',
  version: PACKAGE_VERSION,
  pluginApi: '^2.0.0',
  provides: containersToken,
  requires: { client: clientToken },
  init: ({ client }) => new ContainersProxy(client),
});

export const cliPlugins: readonly AnyPluginManifest[] = [
  contentProxyPlugin,
  imagesProxyPlugin,
  leasesProxyPlugin,
  snapshottersProxyPlugin,
  applierProxyPlugin,
  containersProxyPlugin,
];
