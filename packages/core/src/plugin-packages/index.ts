export * from './media-types.js';
export * from './tree.js';
export * from './signature.js';
export * from './facts.js';
export * from './installed.js';
export * from './load.js';
