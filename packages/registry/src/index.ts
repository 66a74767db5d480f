export { PACKAGE_NAME, PACKAGE_VERSION } from './version.js';
export * from './blob-fetcher.js';
export * from './remote.js';
export * from './fetch-blob.js';
export type * from './remotes.js';
