import { containerExtensionsPoint, coreTokens, definePlugin, extensionSchemasToken, PluginKind } from '@berth/core';
import { extensionsJsonConfigDefaults, extensionsJsonConfigSchema } from './config.js';
import { JsonExtensionPolicy } from './policy.js';
import { JsonSchemaRegistry } from './schema-registry.js';
import { PACKAGE_VERSION } from './version.js';

/**
 * JSON container extensions: a registry of JSON Schemas per extension name (config files and the API, persisted in
 * the plugin's root), and the policy the containers store applies on every write (validation, index terms). It
 * requires nothing of the metadata plugin, which requires its contribution (the other way would be a cycle).
 */
export const extensionsJsonPlugin = definePlugin({
  type: PluginKind.Extensions, // io.berth.extensions.v1
  id: 'json',
  version: PACKAGE_VERSION,
  pluginApi: '^2.0.0',
  description: 'JSON Schemas (draft 2020-12) per extension name; validation and index terms of container extensions',
  provides: { policy: containerExtensionsPoint, schemas: extensionSchemasToken },
  requires: { dirs: coreTokens.dirs, log: coreTokens.logger },
  config: { schema: extensionsJsonConfigSchema, defaults: extensionsJsonConfigDefaults },
  async init({ dirs, log }, config) {
    const schemas = await JsonSchemaRegistry.open({ root: dirs.root, files: config.schemas, log });
    return { schemas, policy: new JsonExtensionPolicy(schemas, { requireRegistered: config.require_registered }) };
  },
  close: ({ schemas }) => schemas.close(),
});
export default extensionsJsonPlugin;
