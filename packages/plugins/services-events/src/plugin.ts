import { definePlugin, eventsToken, PluginKind, rpcServicesPoint } from '@berth/core';
import { EventsService } from './events-service.js';
import { PACKAGE_VERSION } from './version.js';

/**
 * containerd.services.events.v1.Events over the exchange (Publish, Forward, Subscribe), and the ttrpc
 * containerd.services.events.ttrpc.v1.Events/Forward that shims call on `<grpc address>.ttrpc`.
 */
export const eventsServicePlugin = definePlugin({
  type: PluginKind.GRPC,
  id: 'events',
  version: PACKAGE_VERSION,
  pluginApi: '^2.0.0',
  provides: rpcServicesPoint,
  requires: { events: eventsToken },
  init: ({ events }) => new EventsService(events),
});
export default eventsServicePlugin;
