export * from './blob-io.js';
