export * from './errdefs.js';
