export * from './plugin.js';
export { default } from './plugin.js';
export { JsonSchemaRegistry, readSchemaFile, checkExtensionName, STATE_FILE, type CompiledSchema, type ExistingValue, type SchemaRegistryOptions } from './schema-registry.js';
export { JsonExtensionPolicy, type JsonExtensionPolicyOptions } from './policy.js';
export { compileJsonSchema, describeSchemaErrors, parseJsonValue } from './json-schema.js';
export { checkIndexedPaths, termsOf, valuesAt, MAX_INDEXED_PATHS } from './terms.js';
export { extensionsJsonConfigDefaults, extensionsJsonConfigSchema, type ExtensionsJsonConfig } from './config.js';
