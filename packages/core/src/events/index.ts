export * from './exchange.js';
export * from './plugin.js';
