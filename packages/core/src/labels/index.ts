export * from './labels.js';
export * from './gc-labels.js';
