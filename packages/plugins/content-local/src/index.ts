export * from './plugin.js';
export { default } from './plugin.js';
export { contentLocalConfigDefaults, contentLocalConfigSchema, type ContentLocalConfig } from './config.js';
export { LocalContentStore, type LocalContentStoreOptions } from './local-content-store.js';
