export * from './test-host.js';
export * from './content-conformance.js';
export * from './memory-content-store.js';
export * from './memory-snapshotter.js';
export * from './helpers.js';
export * from './tmpfs.js';
export * from './snapshotter-conformance.js';
