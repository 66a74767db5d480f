export { PACKAGE_NAME, PACKAGE_VERSION } from './version.js';
export type * from './types.js';
