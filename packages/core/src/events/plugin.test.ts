import { describe, expect, it } from 'vitest';
import type { Envelope } from '../kinds/events.js';
import { PluginKind } from '../kinds/plugin-kind.js';
import { eventsToken } from '../kinds/tokens.js';
import { coreTokens } from '../registry/host.js';
import { isPluginManifest, pluginUri } from '../registry/manifest.js';
import { createTestHost } from '../testing/test-host.js';
import { PACKAGE_VERSION } from '../version.js';
import { LocalEventExchange } from './exchange.js';
import { exchangePlugin } from './plugin.js';

const URI = 'io.containerd.event.v1.exchange';

describe('exchangePlugin', () => {
  it('is a manifest for io.containerd.event.v1.exchange providing the events token', () => {
    expect(isPluginManifest(exchangePlugin)).toBe(true);
    expect(pluginUri(exchangePlugin)).toBe(URI);
    expect(exchangePlugin.type).toBe(PluginKind.Event);
    expect(exchangePlugin.version).toBe(PACKAGE_VERSION);
    expect(exchangePlugin.provides).toBe(eventsToken);
    expect(exchangePlugin.requires).toEqual({ log: coreTokens.logger, metrics: coreTokens.metrics });
  });

  it('boots in a host, delivers events, and ends subscriptions when the host closes', async () => {
    const t = await createTestHost({ plugins: [exchangePlugin], required: [URI] });
    const exchange = t.host.get(eventsToken);
    expect(exchange).toBeInstanceOf(LocalEventExchange);
    expect(t.host.list().find((r) => r.uri === URI)).toMatchObject({ status: 'ok', version: PACKAGE_VERSION });

    const received: Envelope[] = [];
    const reading = (async () => {
      for await (const envelope of exchange.subscribe(['topic=="/namespaces/create"'], new AbortController().signal)) {
        received.push(envelope);
      }
    })();
    const event = { typeUrl: 'containerd.events.NamespaceCreate', value: new Uint8Array() };
    await exchange.publish('default', '/namespaces/create', event, { name: 'default' });
    await exchange.publish('default', '/namespaces/delete', event);
    await t.close();
    await reading; // ends because the host closed the exchange
    expect(received.map((e) => e.topic)).toEqual(['/namespaces/create']);
  });
});
