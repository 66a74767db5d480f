export * from './plugin.js';
export { default } from './plugin.js';
export { ContainersService, fromWireContainer } from './containers-service.js';
