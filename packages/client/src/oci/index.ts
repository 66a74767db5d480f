export * from './types.js';
export * from './spec.js';
export * from './options.js';
export * from './user.js';
export * from './rootfs.js';
