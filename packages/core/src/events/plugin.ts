import { PluginKind } from '../kinds/plugin-kind.js';
import { eventsToken } from '../kinds/tokens.js';
import { coreTokens } from '../registry/host.js';
import { definePlugin } from '../registry/manifest.js';
import { PACKAGE_VERSION } from '../version.js';
import { LocalEventExchange } from './exchange.js';

/**
 * io.containerd.event.v1.exchange: the daemon's events exchange. No `close` here: the host calls the instance's
 * own close(), which ends every subscription.
 */
export const exchangePlugin = definePlugin({
  type: PluginKind.Event,
  id: 'exchange',
  version: PACKAGE_VERSION,
  pluginApi: '^2.0.0',
  description: 'in-process events exchange: publish, forward, filtered subscriptions',
  provides: eventsToken,
  requires: { log: coreTokens.logger, metrics: coreTokens.metrics },
  init: ({ log, metrics }) => new LocalEventExchange({ log, metrics }),
});
