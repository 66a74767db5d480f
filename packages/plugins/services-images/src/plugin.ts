import { definePlugin, eventPublisherToken, gcToken, imagesToken, PluginKind, rpcServicesPoint } from '@berth/core';
import { ImagesService } from './images-service.js';
import { PACKAGE_VERSION } from './version.js';

/**
 * containerd.services.images.v1.Images over the image store; publishes /images/create|update|delete, and a
 * `Delete{sync}` waits for the GC scheduler (or, without one, for the store's own collection).
 */
export const imagesServicePlugin = definePlugin({
  type: PluginKind.GRPC,
  id: 'images',
  version: PACKAGE_VERSION,
  pluginApi: '^2.0.0',
  provides: rpcServicesPoint,
  requires: { images: imagesToken, events: eventPublisherToken, gc: gcToken.optional },
  init: ({ images, events, gc }) => new ImagesService(images, events, gc),
});
export default imagesServicePlugin;
