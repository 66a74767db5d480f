// The CLI's composition of client-side plugins (STYLE §3, §7): the daemon composes its plugins eagerly, the CLI
// resolves only the closure a command needs, on first use (CliContext.resolve). The client itself is not a plugin:
// the CLI makes it from the global options and provides it under clientToken.
import { ContentStoreProxy, ImageStoreProxy, clientToken } from '@berth/client';
import { contentStoreToken, definePlugin, imagesToken, PluginKind, type AnyPluginManifest } from '@berth/core';
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

export const cliPlugins: readonly AnyPluginManifest[] = [contentProxyPlugin, imagesProxyPlugin];
