export * from './ajv.js';
export * from './errors.js';
export * from './server-config.js';
