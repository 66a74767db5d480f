export * from './write-file-atomic.js';
export * from './util.js';
