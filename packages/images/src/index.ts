export { PACKAGE_NAME, PACKAGE_VERSION } from './version.js';
export type * from './types.js';
export * from './media-types.js';
export * from './platforms.js';
export * from './manifests.js';
export { chainIds } from './identity.js';
export * from './archive/index.js';
export * from './inspect.js';
