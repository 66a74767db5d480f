export * from './adaptor.js';
