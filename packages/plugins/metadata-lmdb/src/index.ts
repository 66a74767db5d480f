export * from './plugin.js';
export { default } from './plugin.js';
export { LmdbMetadataStore, type LmdbMetadataStoreOptions } from './metadata-store.js';
export { metadataLmdbConfigSchema, metadataLmdbConfigDefaults, type MetadataLmdbConfig } from './config.js';
export { SCHEMA_VERSION } from './schema.js';
