// The CLI's plugin host: its composition (plugins.ts) with the client of the global options, made on the first
// command that needs a kind (CliContext.resolve), so that other commands never load the plugin machinery.
import { clientToken, type BerthClient } from '@berth/client';
import { override, PluginHost } from '@berth/core';
import { cliPluginRoot } from './context.js';
import { cliPlugins } from './plugins.js';
import { PACKAGE_VERSION } from './version.js';

export function createCliHost(address: string, client: BerthClient): PluginHost {
  return PluginHost.create({
    plugins: cliPlugins,
    server: { root: cliPluginRoot(), state: cliPluginRoot(), grpcAddress: address, ttrpcAddress: '', version: PACKAGE_VERSION, revision: '' },
    overrides: [override(clientToken, client)],
  });
}
