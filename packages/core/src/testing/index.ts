export * from './test-host.js';
export * from './content-conformance.js';
export * from './tmpfs.js';
