export * from './errdefs.js';
export * from './system.js';
