export * from './plugin.js';
export { default } from './plugin.js';
