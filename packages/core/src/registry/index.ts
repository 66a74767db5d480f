export * from './token.js';
export * from './manifest.js';
export * from './records.js';
export * from './host.js';
export * from './loader.js';
export * from './graph.js';
export * from './check.js';
