export * from './filter.js';
export * from './adaptor.js';
