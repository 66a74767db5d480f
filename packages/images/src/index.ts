export { PACKAGE_NAME, PACKAGE_VERSION } from './version.js';
export type * from './types.js';
export * from './archive/index.js';
